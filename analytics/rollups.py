"""The dashboards' roll-ups (analytics/metrics.py), rewritten by the nightly job.

Each figure is aggregated in SQL at its finest grain (month × store × tier, and a member
dimension only where a distinct count needs one); the "all stores" and "all tiers" rows are
sums of those in Python (a member has one store and one tier, so member counts add up),
except buyers by purchase store, whose all-stores count is its own query (a member who
bought at two stores is one buyer). The rows of a night replace the previous night's in
one transaction, so a dashboard reads either the old figures or the new, never a mix.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from core.bulk import copy_value, copy_write, use_copy
from core.jobs import on_connections
from points.models import LedgerTransaction
from tiers.models import TierHistory
from tiers.selectors import tier_levels

from . import metrics as m
from .figures import day_end
from .models import Rollup
from .sql import (
    adapted,
    day_diff_sql,
    day_sql,
    month_bounds,
    month_bucket_sql,
    month_no,
    month_of_no,
)

Key = tuple[str, datetime.date, int, int, str]

# What this job writes; the churn job writes the churn snapshots itself.
JOB_METRICS = (
    m.MEMBERS_TOTAL,
    m.MEMBERS_NEW,
    m.MEMBERS_ACTIVE,
    m.ORDERS,
    m.REVENUE,
    m.RETURNS,
    m.BUYERS,
    m.REPEAT_BUYERS,
    m.TIER_MEMBERS,
    m.TIER_UP,
    m.TIER_DOWN,
    m.POINTS_ISSUED,
    m.POINTS_REDEEMED,
    m.POINTS_EXPIRED,
    m.POINTS_OTHER,
    m.POINTS_OUTSTANDING,
    m.LOT_ISSUED,
    m.LOT_REDEEMED,
    m.LOT_EXPIRED,
    m.LOT_OPEN,
    m.LOT_REDEEMED_BY_AGE,
    m.STAGE_MEMBERS,
    m.RFM_MEMBERS,
    m.RFM_REVENUE,
    m.COHORT_SIZE,
    m.COHORT_ACTIVE,
    m.CHURNED,
    m.NOT_CHURNED_AT_START,
)


class _Figures:
    """Sums by (metric, period, store, tier, dim), with the all-stores / all-tiers rows."""

    def __init__(self) -> None:
        self.values: dict[Key, Decimal] = defaultdict(Decimal)

    def add(
        self,
        metric: str,
        period: datetime.date,
        store: int,
        tier: int,
        value: Any,
        dim: str = "",
        *,
        stores_add_up: bool = True,
    ) -> None:
        if not value:
            return
        value = Decimal(value)
        # 0 is "all": a key that is 0 itself (no tier levels at all) is added there once.
        stores = (store, 0) if stores_add_up and store != 0 else (store,)
        for s in stores:
            for t in (tier, 0) if tier != 0 else (0,):
                self.values[(metric, period, s, t, dim)] += value

    def rows(self) -> Iterable[tuple[str, datetime.date, int, int, str, Decimal]]:
        # A figure of zero is no row: the dashboards read a missing row as zero.
        for (metric, period, store, tier, dim), value in self.values.items():
            if value:
                yield metric, period, store, tier, dim, value


# Each member's dashboard store and current tier, as on MemberFigures (written just
# before). A member closed since has no figures: their store is still known, their tier is
# not (-1): they count in "all tiers" only.
def keys_of(member_id: str) -> str:
    """Join a row's member and their figures (for STORE_OF and TIER_OF)."""
    return (
        f"JOIN members_member m ON m.id = {member_id} "
        "LEFT JOIN analytics_memberfigures f ON f.member_id = m.id"
    )


STORE_OF = "COALESCE(f.store_key, m.home_store_id, m.enrolment_store_id, -1)"
TIER_OF = "COALESCE(f.tier_key, -1)"


def _fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _day(value: Any) -> datetime.date:
    return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(value)


def _members(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    rows = _fetch(
        f"""
        SELECT {month_bucket_sql("m.enrolled_at")}, {month_bucket_sql("m.closed_at")},
               {STORE_OF}, {TIER_OF}, COUNT(*)
        FROM members_member m LEFT JOIN analytics_memberfigures f ON f.member_id = m.id
        WHERE m.enrolled_at < %(end)s
        GROUP BY 1, 2, 3, 4
        """,  # noqa: S608
        params,
    )
    last = month_no(as_of)
    for enrolled, closed, store, tier, count in rows:
        figures.add(m.MEMBERS_NEW, month_of_no(enrolled), store, tier, count)
        figures.add(m.COHORT_SIZE, month_of_no(enrolled), store, tier, count)
        # Counted at the end of every month from enrolment until the month it closed.
        until = last if closed is None else min(last, closed - 1)
        for month in range(enrolled, until + 1):
            figures.add(m.MEMBERS_TOTAL, month_of_no(month), store, tier, count)


def _purchases_by_store(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    month = month_bucket_sql("p.occurred_at")
    # Orders, revenue and buyers at each store: a member counts once per store and month.
    for mo, store, tier, orders, revenue, buyers, repeat in _fetch(
        f"""
        SELECT x.mo, x.store_id, {TIER_OF}, SUM(x.n), SUM(x.amount), COUNT(*),
               SUM(CASE WHEN x.n >= 2 THEN 1 ELSE 0 END)
        FROM (SELECT p.member_id, {month} AS mo, p.store_id, COUNT(*) AS n,
                     SUM(p.amount) AS amount
              FROM points_purchase p WHERE p.occurred_at < %(end)s
              GROUP BY p.member_id, {month}, p.store_id) x
        LEFT JOIN analytics_memberfigures f ON f.member_id = x.member_id
        GROUP BY 1, 2, 3
        """,  # noqa: S608
        params,
    ):
        period = month_of_no(mo)
        figures.add(m.ORDERS, period, store, tier, orders)
        figures.add(m.REVENUE, period, store, tier, revenue)
        figures.add(m.BUYERS, period, store, tier, buyers, stores_add_up=False)
        figures.add(m.REPEAT_BUYERS, period, store, tier, repeat, stores_add_up=False)


def _returns(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    for mo, store, tier, returned in _fetch(
        f"""
        SELECT {month_bucket_sql("r.occurred_at")}, r.store_id, {TIER_OF}, SUM(r.amount)
        FROM points_return r JOIN points_purchase p ON p.id = r.purchase_id
        LEFT JOIN analytics_memberfigures f ON f.member_id = p.member_id
        WHERE r.occurred_at < %(end)s
        GROUP BY 1, 2, 3
        """,  # noqa: S608
        params,
    ):
        figures.add(m.RETURNS, month_of_no(mo), store, tier, returned)


def _buyers_by_member(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    month = month_bucket_sql("p.occurred_at")
    # Buyers anywhere, by the member's own store too (active members), and by enrolment
    # month (cohort retention). One pass over each member's purchases, newest first as the
    # (member, time) index holds them, so PostgreSQL neither sorts nor hashes millions of
    # (member, month) groups: the newest purchase of a member's month marks a buyer, and a
    # repeat buyer when the purchase before it is in the same month.
    for mo, enrolled, member_store, tier, buyers, repeat in _fetch(
        f"""
        SELECT x.mo, {month_bucket_sql("m.enrolled_at")}, {STORE_OF}, {TIER_OF}, COUNT(*),
               SUM(x.again)
        FROM (
            SELECT member_id, mo,
                   CASE WHEN LAG(mo) OVER w IS NULL OR LAG(mo) OVER w <> mo
                        THEN 1 ELSE 0 END AS newest,
                   CASE WHEN LEAD(mo) OVER w = mo THEN 1 ELSE 0 END AS again
            FROM (SELECT p.member_id, p.occurred_at, {month} AS mo
                  FROM points_purchase p WHERE p.occurred_at < %(end)s) p
            WINDOW w AS (PARTITION BY member_id ORDER BY occurred_at DESC)
        ) x
        {keys_of("x.member_id")}
        WHERE x.newest = 1
        GROUP BY 1, 2, 3, 4
        """,  # noqa: S608
        params,
    ):
        period = month_of_no(mo)
        # Every store at once (the per-store rows came from the pass above).
        for t in (tier, 0) if tier != 0 else (0,):
            figures.values[(m.BUYERS, period, 0, t, "")] += buyers
            figures.values[(m.REPEAT_BUYERS, period, 0, t, "")] += repeat or 0
        figures.add(m.MEMBERS_ACTIVE, period, member_store, tier, buyers)
        if mo >= enrolled:
            figures.add(
                m.COHORT_ACTIVE,
                month_of_no(enrolled),
                member_store,
                tier,
                buyers,
                str(mo - enrolled),
            )


def _tiers(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    codes = {level.pk: level.code for level in tier_levels()}
    for store, tier, count in _fetch(
        "SELECT store_key, tier_key, COUNT(*) FROM analytics_memberfigures GROUP BY 1, 2",
        params,
    ):
        figures.add(m.TIER_MEMBERS, as_of, store, tier, count, codes.get(tier, str(tier)))
    for mo, store, tier, up, down in _fetch(
        f"""
        SELECT {month_bucket_sql("h.at")}, {STORE_OF}, h.to_level_id,
               SUM(CASE WHEN fl.rank IS NULL OR tl.rank > fl.rank THEN 1 ELSE 0 END),
               SUM(CASE WHEN tl.rank < fl.rank THEN 1 ELSE 0 END)
        FROM tiers_tierhistory h
        JOIN tiers_tierlevel tl ON tl.id = h.to_level_id
        LEFT JOIN tiers_tierlevel fl ON fl.id = h.from_level_id
        {keys_of("h.member_id")}
        WHERE h.at < %(end)s AND h.reason <> %(imported)s
        GROUP BY 1, 2, 3
        """,  # noqa: S608
        {**params, "imported": TierHistory.Reason.IMPORT},
    ):
        figures.add(m.TIER_UP, month_of_no(mo), store, tier, up)
        figures.add(m.TIER_DOWN, month_of_no(mo), store, tier, down)


def _points(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    kind = LedgerTransaction.Kind
    # Sums only: joined first, then grouped into a few thousand groups.
    for mo, store, tier, kind_, positive, amount in _fetch(
        f"""
        SELECT {month_bucket_sql("t.occurred_at")}, {STORE_OF}, {TIER_OF}, t.kind,
               CASE WHEN t.member_amount > 0 THEN 1 ELSE 0 END, SUM(t.member_amount)
        FROM points_ledgertransaction t {keys_of("t.member_id")}
        WHERE t.occurred_at < %(end)s
        GROUP BY 1, 2, 3, 4, 5
        """,  # noqa: S608
        params,
    ):
        period = month_of_no(mo)
        if kind_ == kind.TRANSFER:
            # A member merge moves points between members, booked on the giving member
            # only: left out, so the flows still add up to the outstanding in all.
            continue
        if kind_ in (kind.EARN, kind.ADJUST) and positive:
            figures.add(m.POINTS_ISSUED, period, store, tier, amount)
        elif kind_ == kind.REDEEM:
            figures.add(m.POINTS_REDEEMED, period, store, tier, -amount)
        elif kind_ == kind.EXPIRE:
            figures.add(m.POINTS_EXPIRED, period, store, tier, -amount)
        else:
            figures.add(m.POINTS_OTHER, period, store, tier, amount)


def _outstanding(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    for store, tier, outstanding in _fetch(
        f"""
        SELECT {STORE_OF}, {TIER_OF}, SUM(a.balance)
        FROM points_account a {keys_of("a.member_id")}
        GROUP BY 1, 2
        """,  # noqa: S608
        params,
    ):
        figures.add(m.POINTS_OUTSTANDING, as_of, store, tier, outstanding)


def _lots(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    for mo, store, tier, issued, remaining in _fetch(
        f"""
        SELECT {month_bucket_sql("lot.earned_at")}, {STORE_OF}, {TIER_OF},
               SUM(lot.points), SUM(lot.remaining)
        FROM points_lot lot JOIN points_account a ON a.id = lot.account_id
        {keys_of("a.member_id")}
        WHERE lot.earned_at < %(end)s
        GROUP BY 1, 2, 3
        """,  # noqa: S608
        params,
    ):
        figures.add(m.LOT_ISSUED, month_of_no(mo), store, tier, issued)
        figures.add(m.LOT_OPEN, month_of_no(mo), store, tier, remaining)


def _lot_movements(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    kind = LedgerTransaction.Kind
    for mo, moved_mo, store, tier, kind_, amount in _fetch(
        f"""
        SELECT {month_bucket_sql("lot.earned_at")}, {month_bucket_sql("t.occurred_at")},
               {STORE_OF}, {TIER_OF}, t.kind, SUM(mv.amount)
        FROM points_lotmovement mv JOIN points_lot lot ON lot.id = mv.lot_id
        JOIN points_ledgertransaction t ON t.id = mv.transaction_id
        JOIN points_account a ON a.id = lot.account_id
        {keys_of("a.member_id")}
        WHERE (t.kind IN (%(expire)s, %(redeem)s) OR (t.kind = %(transfer)s AND mv.amount > 0))
          AND t.occurred_at < %(end)s
        GROUP BY 1, 2, 3, 4, 5
        """,  # noqa: S608
        {**params, "expire": kind.EXPIRE, "redeem": kind.REDEEM, "transfer": kind.TRANSFER},
    ):
        # Movements are negative when they take points from a lot.
        period = month_of_no(mo)
        if kind_ == kind.TRANSFER:
            # A member merge empties the merged member's lots and makes the same lots
            # again, same earning month, for the member kept (a movement giving each its
            # points): issued once, not twice.
            figures.add(m.LOT_ISSUED, period, store, tier, -amount)
        elif kind_ == kind.EXPIRE:
            figures.add(m.LOT_EXPIRED, period, store, tier, -amount)
        else:
            figures.add(m.LOT_REDEEMED, period, store, tier, -amount)
            figures.add(m.LOT_REDEEMED_BY_AGE, period, store, tier, -amount, str(moved_mo - mo))


def _snapshots(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    for store, tier, stage, count in _fetch(
        "SELECT store_key, tier_key, stage, COUNT(*) FROM analytics_memberfigures GROUP BY 1, 2, 3",
        params,
    ):
        figures.add(m.STAGE_MEMBERS, as_of, store, tier, count, stage)
    for store, tier, r, f, m_, count, revenue in _fetch(
        """
        SELECT store_key, tier_key, r_score, f_score, m_score, COUNT(*), SUM(net_spend_365)
        FROM analytics_memberfigures WHERE r_score IS NOT NULL GROUP BY 1, 2, 3, 4, 5
        """,
        params,
    ):
        cell = f"{r}-{f}-{m_}"
        figures.add(m.RFM_MEMBERS, as_of, store, tier, count, cell)
        figures.add(m.RFM_REVENUE, as_of, store, tier, revenue, cell)


def _churn_events(figures: _Figures, params: dict[str, Any], *, as_of: datetime.date) -> None:
    """Members who became churned in each month, and those not churned at its start.

    A member is "alive" on day t when their last purchase before t is at most SILENT days
    earlier. From each member's purchase days (one window pass): a purchase after a gap of
    more than SILENT days (or the first) starts an alive span; one followed by no purchase
    within SILENT days ends it, and the member churns on day d + SILENT + 1. A month's base
    is who was alive at its start (at the end of the day before its first day t): spans
    started before t − spans churned before t; a churn on day t or later in the month counts
    for the month.
    """
    silent = settings.ANALYTICS_SILENT_DAYS
    day = day_sql("p.occurred_at")
    # Newest first, as the purchases' (member, time) index holds them: PostgreSQL reads them
    # in that order and sorts nothing. So the purchase before is LEAD, the one after LAG.
    # Two purchases on one day are 0 days apart, which starts and ends nothing.
    gap_before = day_diff_sql("d", "LEAD(d) OVER w")
    gap_after = day_diff_sql("LAG(d) OVER w", "d")
    starts: dict[tuple[datetime.date, int, int], int] = defaultdict(int)
    churns: dict[tuple[datetime.date, int, int], int] = defaultdict(int)
    for d, store, tier, started, ended in _fetch(
        f"""
        SELECT y.d, {STORE_OF}, {TIER_OF}, SUM(y.started), SUM(y.ended)
        FROM (
            SELECT member_id, d,
                   CASE WHEN LEAD(d) OVER w IS NULL OR {gap_before} > {silent}
                        THEN 1 ELSE 0 END AS started,
                   CASE WHEN LAG(d) OVER w IS NULL OR {gap_after} > {silent}
                        THEN 1 ELSE 0 END AS ended
            FROM (SELECT p.member_id, p.occurred_at, {day} AS d FROM points_purchase p
                  WHERE p.occurred_at < %(end)s) x
            WINDOW w AS (PARTITION BY member_id ORDER BY occurred_at DESC)
        ) y {keys_of("y.member_id")}
        WHERE y.started = 1 OR y.ended = 1
        GROUP BY 1, 2, 3
        """,  # noqa: S608
        params,
    ):
        d = _day(d)
        starts[(d, store, tier)] += started
        if ended:
            churns[(d + datetime.timedelta(days=silent + 1), store, tier)] += ended
    if not starts:
        return
    first = month_no(min(d for d, _, _ in starts))
    for mo in range(first, month_no(as_of) + 1):
        t = month_of_no(mo)
        alive: dict[tuple[int, int], int] = defaultdict(int)
        for (d, store, tier), count in starts.items():
            if d < t:
                alive[(store, tier)] += count
        for (c, store, tier), count in churns.items():
            if c < t:
                alive[(store, tier)] -= count
            elif month_no(c) == mo and c <= as_of:
                figures.add(m.CHURNED, t, store, tier, count)
        for (store, tier), count in alive.items():
            figures.add(m.NOT_CHURNED_AT_START, t, store, tier, count)


def _rows_write(rows: list[tuple[str, datetime.date, int, int, str, Decimal]]) -> None:
    table = Rollup._meta.db_table
    if use_copy():
        copy_write(
            f"COPY {table} (metric, period, store_key, tier_key, dim, value) FROM STDIN",
            ("\t".join(copy_value(v) for v in row) + "\n" for row in rows),
        )
        return
    Rollup.objects.bulk_create(
        (
            Rollup(metric=metric, period=period, store_key=s, tier_key=t, dim=dim, value=value)
            for metric, period, s, t, dim, value in rows
        ),
        batch_size=2000,
    )


# The queries, the slowest first (measured at 1M members / 10M purchases).
ROLLUP_PARTS = (
    _purchases_by_store,
    _buyers_by_member,
    _churn_events,
    _points,
    _lot_movements,
    _lots,
    _returns,
    _members,
    _outstanding,
    _tiers,
    _snapshots,
)
ROLLUP_WORKERS = 2
# PostgreSQL settings for the roll-up reads' connections (see rollups_write).
_READ_SETTINGS = ("work_mem = '1GB'", "enable_nestloop = off", "enable_sort = off")


def rollups_write(*, as_of: datetime.date) -> int:
    """Replace the roll-ups of JOB_METRICS with the figures as of the business day `as_of`
    (MemberFigures must be written for that day first). Returns the rows written."""
    params = adapted(
        {
            "end": day_end(day=as_of),
            **month_bounds(first=settings.IMPORT_EARLIEST_DATE, last=as_of),
        }
    )
    figures = _Figures()

    def work(part: Any) -> _Figures:
        found = _Figures()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Every part reads millions of rows into a few thousand groups. Hash them in
                # memory (not spilled to disk in batches); join the members by hashing them
                # once, not by millions of index probes; and hash the groups rather than
                # sort millions of joined rows for them. The planner, reckoning on millions
                # of groups, picks the other way each time and takes twice as long.
                for setting in _READ_SETTINGS:
                    cursor.execute(f"SET {setting}")
            try:
                part(found, params, as_of=as_of)
            finally:
                if connection.vendor == "postgresql":
                    for setting in _READ_SETTINGS:
                        cursor.execute(f"RESET {setting.split(' ')[0]}")
        return found

    def done(found: _Figures) -> None:
        for key, value in found.values.items():
            figures.values[key] += value

    # The parts read on two connections at once on PostgreSQL, largest first; each is one
    # consistent read of its own (the night's data does not move under them).
    on_connections(items=ROLLUP_PARTS, work=work, workers=ROLLUP_WORKERS, done=done)
    rows = list(figures.rows())
    with transaction.atomic():
        Rollup.objects.filter(metric__in=JOB_METRICS).delete()
        _rows_write(rows)
    return len(rows)


def member_snapshot_rollup_write(
    *, metric: str, dim_sql: str, as_of: datetime.date, where_sql: str = "true"
) -> int:
    """Replace the roll-up rows of one snapshot metric with member counts from
    MemberFigures by store, tier and `dim_sql` (an expression over its columns, e.g.
    `churn_band`), for members matching `where_sql`. For the churn job, which writes its
    scores after the nightly analytics job has run."""
    figures = _Figures()
    for store, tier, dim, count in _fetch(
        f"SELECT store_key, tier_key, {dim_sql}, COUNT(*) FROM analytics_memberfigures "  # noqa: S608
        f"WHERE {where_sql} GROUP BY 1, 2, 3",
        {},
    ):
        figures.add(metric, as_of, store, tier, count, str(dim))
    rows = list(figures.rows())
    with transaction.atomic():
        Rollup.objects.filter(metric=metric).delete()
        _rows_write(rows)
    return len(rows)
