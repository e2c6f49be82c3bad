"""The tiers jobs of the nightly chain: evaluation (01:00) and the tier notices (09:00)."""

from __future__ import annotations

import datetime
from typing import Any

from core import jobs as core_jobs

from .services import tier_evaluate, tier_notices_send


def _progress(done: int, total: int) -> None:
    core_jobs.job_progress(done=done, total=total)


def tier_evaluation_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Manual tiers that ended, anniversaries (retained or one level down), upgrade sweep."""
    result = tier_evaluate(business_day=business_date, progress=_progress)
    return result.changed, {
        "retained": result.retained,
        "downgraded": result.downgraded,
        "upgraded": result.upgraded,
        "overrides_ended": result.overrides_ended,
    }


def tier_notices_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Tell members about the night's tier changes at a decent hour, each once."""
    sent = tier_notices_send(progress=_progress)
    return sent, {"notices": sent}
