"""The nightly analytics job (02:00): figures and roll-ups for the business day."""

from __future__ import annotations

import datetime
from typing import Any

from .services import analytics_rollup


def analytics_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    members, rows = analytics_rollup(business_date=business_date)
    return members, {"members": members, "rollup_rows": rows}
