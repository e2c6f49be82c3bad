"""The few SQL expressions that differ between PostgreSQL and SQLite.

Business dates are in settings.TIME_ZONE (Asia/Shanghai). SQLite stores times as UTC text
and knows no zones, so it is given the zone's fixed offset (China keeps no summer time); a
zone with summer time would need PostgreSQL for exact day boundaries.
"""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections

from tiers.selectors import start_of

BUSINESS_TZ = ZoneInfo(settings.TIME_ZONE)


def month_no(day: datetime.date) -> int:
    """Months since year 0: consecutive months differ by one."""
    return day.year * 12 + day.month - 1


def month_of_no(number: int) -> datetime.date:
    return datetime.date(number // 12, number % 12 + 1, 1)


def adapted(params: dict[str, Any], *, using: str = "default") -> dict[str, Any]:
    """Parameters for raw SQL as the ORM would send them: on SQLite a time must be naive
    UTC text to compare with the stored text (sqlite3 itself would add an offset)."""
    ops = connections[using].ops
    out = {}
    for key, value in params.items():
        if isinstance(value, datetime.datetime):
            value = ops.adapt_datetimefield_value(value)
        elif isinstance(value, datetime.date):
            value = ops.adapt_datefield_value(value)
        out[key] = value
    return out


def _sqlite_offset() -> str:
    offset = datetime.datetime.now(BUSINESS_TZ).utcoffset() or datetime.timedelta()
    return f"{int(offset.total_seconds() // 60):+d} minutes"


def day_sql(column: str, *, using: str = "default") -> str:
    """The business date of a timestamp column (a date on PostgreSQL, 'YYYY-MM-DD' text on
    SQLite: both order and compare as days)."""
    if connections[using].vendor == "postgresql":
        return f"(({column}) AT TIME ZONE '{settings.TIME_ZONE}')::date"
    return f"date({column}, '{_sqlite_offset()}')"


def month_no_sql(column: str, *, using: str = "default") -> str:
    """`month_no` of a timestamp column's business date, as an integer."""
    if connections[using].vendor == "postgresql":
        local = f"(({column}) AT TIME ZONE '{settings.TIME_ZONE}')"
        return f"(EXTRACT(YEAR FROM {local}) * 12 + EXTRACT(MONTH FROM {local}) - 1)::int"
    offset = _sqlite_offset()
    return (
        f"(CAST(strftime('%%Y', {column}, '{offset}') AS INTEGER) * 12"
        f" + CAST(strftime('%%m', {column}, '{offset}') AS INTEGER) - 1)"
    )


def month_bounds(*, first: datetime.date, last: datetime.date) -> dict[str, Any]:
    """The parameters `month_bucket_sql` needs: the months from `first` to `last`."""
    starts = [
        start_of(month_of_no(number)).isoformat()
        for number in range(month_no(first), month_no(last) + 2)
    ]
    return {"month_bounds": "{" + ",".join(starts) + "}", "month_first": month_no(first)}


def month_bucket_sql(column: str, *, using: str = "default") -> str:
    """`month_no_sql` for the months of `month_bounds` (the query's parameters must hold
    them). PostgreSQL finds the month by a binary search over the month starts, a third of
    the time of converting every timestamp to local time; earlier times give month_first − 1."""
    if connections[using].vendor == "postgresql":
        return f"(%(month_first)s - 1 + width_bucket({column}, %(month_bounds)s::timestamptz[]))"
    return month_no_sql(column, using=using)


def day_diff_sql(later: str, earlier: str, *, using: str = "default") -> str:
    """Whole days between two business-date expressions of `day_sql` (later − earlier)."""
    if connections[using].vendor == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"
