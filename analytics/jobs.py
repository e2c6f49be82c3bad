"""The nightly analytics job (02:00): figures and roll-ups as of the day before."""

from __future__ import annotations

import datetime
from typing import Any

from .figures import figures_day
from .services import analytics_rollup


def analytics_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    members, rows = analytics_rollup(business_date=figures_day(business_date))
    return members, {"members": members, "rollup_rows": rows}
