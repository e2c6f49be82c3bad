"""The per-member figures, rewritten set-based for a business day: one statement.

Windows end with the business day `as_of` (Asia/Shanghai). "The last N days" are the N
business days ending with it; days since the last purchase count business days, so two
purchases on one day are equally recent. Net spend = purchases − returns, each by its own
business date (a return in the window lowers the window's spend whenever the purchase was).
Purchases imported as history count: they are the retailer's own past.

RFM (ANALYTICS.md): among members with a purchase in the last 365 days, R = days since the
last purchase, F = orders and M = net spend over those 365 days, each scored 1–5 by
quintile: score = 1 + ⌊5 × (rank − 1) ÷ n⌋ with rank the SQL RANK() (ties share the lowest
rank, so ties share a score), ordered so that 5 is best (R: fewest days).

Lifecycle (thresholds are settings): new — enrolled at most ANALYTICS_NEW_DAYS ago with at
most one purchase; never purchased; active — at most ANALYTICS_ACTIVE_DAYS since the last
purchase; silent — up to ANALYTICS_SILENT_DAYS; churned — more.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from members.models import Member
from tiers.selectors import start_of, tier_levels

from .rfm import rfm_cell_case_sql
from .sql import adapted, day_diff_sql, day_sql


def open_members_where(*, end: str = "end") -> str:
    """SQL over `members_member m`: the members open at the time parameter `end` (the end of
    a day), who have figures and are scored. Closing, merging and anonymising set
    closed_at; a status that says closed without a time (old data) was closed at some
    unknown time and counts on no day. The parameters `open_statuses` gives are needed."""
    return (
        f"m.enrolled_at < %({end})s AND (m.closed_at IS NULL OR m.closed_at >= %({end})s) "
        "AND (m.closed_at IS NOT NULL OR m.status IN (%(open_active)s, %(open_frozen)s))"
    )


def open_statuses() -> dict[str, str]:
    return {"open_active": Member.Status.ACTIVE, "open_frozen": Member.Status.FROZEN}


_WINDOWS = (30, 90, 365)


def day_end(*, day: datetime.date) -> datetime.datetime:
    """The first instant after business day `day`: data of the day is strictly before it."""
    return start_of(day + datetime.timedelta(days=1))


def figures_day(business_date: datetime.date) -> datetime.date:
    """The day the nightly figures are as of: the day before the run's business date, the
    last complete one (the 02:00 and 03:00 jobs would otherwise count a day three hours
    old, and a churn label window not yet closed)."""
    return business_date - datetime.timedelta(days=1)


def window_start(*, as_of: datetime.date, days: int) -> datetime.datetime:
    """The start of the `days` business days that end with `as_of`."""
    return start_of(as_of - datetime.timedelta(days=days - 1))


def stage_bounds(*, as_of: datetime.date) -> dict[str, datetime.datetime]:
    """The times the lifecycle rule compares with (see the module's docstring)."""
    return {
        "new_since": start_of(as_of - datetime.timedelta(days=settings.ANALYTICS_NEW_DAYS)),
        "active_since": start_of(as_of - datetime.timedelta(days=settings.ANALYTICS_ACTIVE_DAYS)),
        "silent_since": start_of(as_of - datetime.timedelta(days=settings.ANALYTICS_SILENT_DAYS)),
    }


def _params(*, as_of: datetime.date, now: datetime.datetime) -> dict[str, Any]:
    end = day_end(day=as_of)
    levels = tier_levels()
    return {
        "as_of": as_of,
        "as_of_day": as_of.isoformat(),
        "end": end,
        "expiring_until": end + datetime.timedelta(days=30),
        "base_tier": levels[0].pk if levels else 0,
        **open_statuses(),
        "now": now,
        **{f"t{days}": window_start(as_of=as_of, days=days) for days in _WINDOWS},
        **stage_bounds(as_of=as_of),
    }


def _window_sums(column: str, time: str, prefix: str) -> str:
    return ", ".join(
        f"SUM(CASE WHEN {time} >= %(t{days})s THEN {column} ELSE 0 END) AS {prefix}{days}"
        for days in _WINDOWS
    )


def _figures_sql() -> str:
    last_day = day_sql("last_at")
    recency = day_diff_sql(
        "%(as_of_day)s" if connection.vendor == "sqlite" else "%(as_of)s", last_day
    )
    scored = "n365 > 0"
    columns = (
        "member_id, as_of, store_key, tier_key, first_purchase_at, last_purchase_at, "
        "orders_30, orders_90, orders_365, orders_total, net_spend_30, net_spend_90, "
        "net_spend_365, net_spend_total, avg_days_between, balance, expiring_30, "
        "r_score, f_score, m_score, rfm_cell, stage, churn_band, updated_at"
    )
    updates = ", ".join(
        f"{c} = excluded.{c}" for c in columns.split(", ") if c not in ("member_id", "churn_band")
    )
    # Built from the constants above only; every value is a parameter.
    return f"""
WITH p AS (
    SELECT member_id, MIN(occurred_at) AS first_at, MAX(occurred_at) AS last_at,
           COUNT(*) AS n, SUM(amount) AS spent,
           {_window_sums("1", "occurred_at", "n")},
           {_window_sums("amount", "occurred_at", "s")}
    FROM points_purchase
    WHERE occurred_at < %(end)s
    GROUP BY member_id
), r AS (
    SELECT pu.member_id, SUM(re.amount) AS returned,
           {_window_sums("re.amount", "re.occurred_at", "r")}
    FROM points_return re JOIN points_purchase pu ON pu.id = re.purchase_id
    WHERE re.occurred_at < %(end)s
    GROUP BY pu.member_id
), expiring AS (
    SELECT a.member_id, SUM(lot.remaining) AS points
    FROM points_lot lot JOIN points_account a ON a.id = lot.account_id
    WHERE lot.remaining > 0 AND lot.expires_at >= %(end)s AND lot.expires_at < %(expiring_until)s
      AND a.member_id IS NOT NULL
    GROUP BY a.member_id
), base AS (
    SELECT m.id AS member_id, m.enrolled_at,
           COALESCE(m.home_store_id, m.enrolment_store_id, -1) AS store_key,
           COALESCE(mt.level_id, %(base_tier)s) AS tier_key,
           p.first_at, p.last_at, COALESCE(p.n, 0) AS n,
           COALESCE(p.n30, 0) AS n30, COALESCE(p.n90, 0) AS n90, COALESCE(p.n365, 0) AS n365,
           COALESCE(p.spent, 0) - COALESCE(r.returned, 0) AS net,
           COALESCE(p.s30, 0) - COALESCE(r.r30, 0) AS net30,
           COALESCE(p.s90, 0) - COALESCE(r.r90, 0) AS net90,
           COALESCE(p.s365, 0) - COALESCE(r.r365, 0) AS net365,
           COALESCE(a.balance, 0) AS balance, COALESCE(expiring.points, 0) AS expiring
    FROM members_member m
    LEFT JOIN p ON p.member_id = m.id
    LEFT JOIN r ON r.member_id = m.id
    LEFT JOIN tiers_membertier mt ON mt.member_id = m.id
    LEFT JOIN points_account a ON a.member_id = m.id
    LEFT JOIN expiring ON expiring.member_id = m.id
    WHERE {open_members_where()}
), ranked AS (
    SELECT base.*,
           CASE WHEN {scored} THEN
               RANK() OVER (PARTITION BY {scored} ORDER BY {recency} DESC) END AS r_rank,
           CASE WHEN {scored} THEN
               RANK() OVER (PARTITION BY {scored} ORDER BY n365) END AS f_rank,
           CASE WHEN {scored} THEN
               RANK() OVER (PARTITION BY {scored} ORDER BY net365) END AS m_rank,
           COUNT(*) OVER (PARTITION BY {scored}) AS scored_n
    FROM base
), scored AS (
    SELECT ranked.*,
           1 + (5 * (r_rank - 1)) / scored_n AS r_score,
           1 + (5 * (f_rank - 1)) / scored_n AS f_score,
           1 + (5 * (m_rank - 1)) / scored_n AS m_score
    FROM ranked
)
INSERT INTO analytics_memberfigures ({columns})
SELECT member_id, %(as_of)s, store_key, tier_key, first_at, last_at,
       n30, n90, n365, n, net30, net90, net365, net,
       CASE WHEN n > 1 THEN
           ROUND({day_diff_sql(last_day, day_sql("first_at"))} * 1.0 / (n - 1), 1)
       END,
       balance, expiring, r_score, f_score, m_score,
       {rfm_cell_case_sql(r="r_score", f="f_score", m="m_score")},
       CASE WHEN enrolled_at >= %(new_since)s AND n <= 1 THEN 'new'
            WHEN n = 0 THEN 'never'
            WHEN last_at >= %(active_since)s THEN 'active'
            WHEN last_at >= %(silent_since)s THEN 'silent'
            ELSE 'churned' END,
       '', %(now)s
FROM scored
WHERE true
ON CONFLICT (member_id) DO UPDATE SET {updates}
"""  # noqa: S608


def member_figures_write(*, as_of: datetime.date, now: datetime.datetime | None = None) -> int:
    """Rewrite the figures of every member open at the end of the business day `as_of`
    (`open_members_where`); the others lose their row. Returns the rows written.

    The churn score and band are kept: the churn scoring job (03:00) writes them."""
    params = adapted(_params(as_of=as_of, now=now or timezone.now()))
    with connection.cursor() as cursor:
        cursor.execute(_figures_sql(), params)
        cursor.execute(
            "DELETE FROM analytics_memberfigures WHERE member_id NOT IN ("  # noqa: S608
            f"SELECT m.id FROM members_member m WHERE {open_members_where()})",
            params,
        )
        # SQLite gives no row count for an INSERT … SELECT with a WITH clause.
        cursor.execute("SELECT COUNT(*) FROM analytics_memberfigures")
        return cursor.fetchone()[0]
