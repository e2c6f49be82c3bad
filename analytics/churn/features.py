"""A member's features as of a cut-off day, read set-based into pandas.

Everything is read from rows whose business time is before the end of the cut-off day
(Asia/Shanghai): purchases (history imports included) and their returns by the time of the
return, the ledger by business time, tier history by the time of the change. Nothing cached
on a row (`Purchase.returned_amount`, `Account.balance`, `MemberTier`) is read: those move
with later activity, and scoring as of a day must give the same figures whether or not later
purchases exist.

Each table is read with ONE aggregate statement grouped by member (a window function for
the gaps between purchases and for the tier at the cut-off), portable between SQLite and
PostgreSQL; only the expression for "days between two times" differs.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from django.db import DEFAULT_DB_ALIAS, connections

from analytics.figures import day_end, open_members_where, open_statuses
from members.models import Member
from points.models import LedgerTransaction, Purchase, Return
from tiers.models import TierHistory, TierLevel

# The columns the classifier reads, in this order (the model card names them too).
FEATURES = (
    "recency_days",
    "never_purchased",
    "orders_30",
    "orders_90",
    "orders_365",
    "orders_total",
    "net_spend_90",
    "net_spend_365",
    "tenure_days",
    "gap_mean_days",
    "gap_std_days",
    "recency_to_gap",
    "orders_trend_90",
    "spend_trend_90",
    "returns_share",
    "points_balance",
    "redeemed_share",
    "tier_rank",
)


class _Reader:
    """Reads on one database alias, with the few expressions that differ between vendors."""

    def __init__(self, using: str) -> None:
        self.db = connections[using]
        self.postgres = self.db.vendor == "postgresql"

    def days(self, later: str, earlier: str) -> str:
        """SQL for the (fractional) days from `earlier` to `later`."""
        if self.postgres:
            return f"(EXTRACT(EPOCH FROM ({later}) - ({earlier})) / 86400.0)"
        return f"(julianday({later}) - julianday({earlier}))"

    def time(self, value: datetime.datetime) -> Any:
        # SQLite keeps times as naive UTC text; comparing with the adapted value compares
        # text of one format, which orders as the times do.
        return self.db.ops.adapt_datetimefield_value(value)

    def cut_sql(self) -> str:
        # PostgreSQL must know a parameter is a time before subtracting a column from it.
        return "CAST(%(cut)s AS timestamptz)" if self.postgres else "%(cut)s"

    def rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self.db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def frame(self, sql: str, params: dict[str, Any], columns: Sequence[str]) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(self.rows(sql, params), columns=list(columns))
        for column in columns[1:]:
            # PostgreSQL answers sums of money as Decimal; the model wants floats.
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        return frame


def _sample_clause(column: str, sample: tuple[int, int] | None) -> str:
    if sample is None:
        return ""
    return f" AND {column} %% {int(sample[0])} = {int(sample[1])}"


def eligible_count(*, cutoff: datetime.date, using: str = DEFAULT_DB_ALIAS) -> int:
    """Members enrolled on or before the cut-off day and not closed on it."""
    read = _Reader(using)
    where, params = _eligible_where(read=read, cutoff=cutoff)
    sql = f"SELECT COUNT(*) FROM {Member._meta.db_table} m WHERE {where}"  # noqa: S608
    return int(read.rows(sql, params)[0][0])


def _eligible_where(*, read: _Reader, cutoff: datetime.date) -> tuple[str, dict[str, Any]]:
    # The members who have figures on the day are the ones scored.
    params = {"cut": read.time(day_end(day=cutoff)), **open_statuses()}
    return open_members_where(end="cut"), params


def churn_features(
    *,
    cutoff: datetime.date,
    horizon_days: int | None = None,
    sample: tuple[int, int] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> pd.DataFrame:
    """One row per member enrolled on or before `cutoff` and not closed on it.

    Columns: member_id, member_no, the FEATURES, and with `horizon_days` the label
    `churned` (1 = no purchase in the horizon days after the cut-off day). `sample`
    (modulus, remainder) keeps the members whose id has that remainder, for training on
    a large base. `using`: the database alias to read (churn training reads the replica).
    """
    read = _Reader(using)
    cut = day_end(day=cutoff)
    where, base = _eligible_where(read=read, cutoff=cutoff)
    params = {
        **base,
        "c30": read.time(cut - datetime.timedelta(days=30)),
        "c90": read.time(cut - datetime.timedelta(days=90)),
        "c180": read.time(cut - datetime.timedelta(days=180)),
        "c365": read.time(cut - datetime.timedelta(days=365)),
    }
    cut_sql = read.cut_sql()
    members_sql = (
        f"SELECT m.id, m.member_no, {read.days(cut_sql, 'm.enrolled_at')} "  # noqa: S608
        f"FROM {Member._meta.db_table} m WHERE {where}{_sample_clause('m.id', sample)}"
    )
    members = pd.DataFrame.from_records(
        read.rows(members_sql, params), columns=["member_id", "member_no", "tenure_days"]
    )
    members["tenure_days"] = np.floor(pd.to_numeric(members["tenure_days"]).astype(float))

    purchase = Purchase._meta.db_table
    in_window = "CASE WHEN p.occurred_at >= %({start})s THEN {value} ELSE 0 END"
    between = (
        "CASE WHEN p.occurred_at >= %(c180)s AND p.occurred_at < %(c90)s THEN {value} ELSE 0 END"
    )
    purchases = read.frame(
        f"SELECT p.member_id, COUNT(*), {read.days(cut_sql, 'MAX(p.occurred_at)')}, "  # noqa: S608
        f"SUM({in_window.format(start='c30', value=1)}), "
        f"SUM({in_window.format(start='c90', value=1)}), "
        f"SUM({in_window.format(start='c365', value=1)}), "
        f"SUM({between.format(value=1)}), "
        f"SUM({in_window.format(start='c90', value='p.amount')}), "
        f"SUM({in_window.format(start='c365', value='p.amount')}), "
        f"SUM({between.format(value='p.amount')}), "
        "SUM(p.amount) "
        f"FROM {purchase} p WHERE p.occurred_at < %(cut)s{_sample_clause('p.member_id', sample)} "
        "GROUP BY p.member_id",
        params,
        [
            "member_id",
            "orders_total",
            "since_last",
            "orders_30",
            "orders_90",
            "orders_365",
            "orders_90_180",
            "spend_90",
            "spend_365",
            "spend_90_180",
            "spend_total",
        ],
    )
    r_window = in_window.replace("p.occurred_at", "r.occurred_at")
    r_between = between.replace("p.occurred_at", "r.occurred_at")
    returns = read.frame(
        f"SELECT p.member_id, SUM({r_window.format(start='c90', value='r.amount')}), "  # noqa: S608
        f"SUM({r_window.format(start='c365', value='r.amount')}), "
        f"SUM({r_between.format(value='r.amount')}), SUM(r.amount) "
        f"FROM {Return._meta.db_table} r JOIN {purchase} p ON p.id = r.purchase_id "
        f"WHERE r.occurred_at < %(cut)s{_sample_clause('p.member_id', sample)} "
        "GROUP BY p.member_id",
        params,
        ["member_id", "returned_90", "returned_365", "returned_90_180", "returned_total"],
    )
    # The gaps between a member's consecutive purchases: their mean and spread. Ordered by
    # time alone: purchases at the same instant make a gap of 0 in any order, and PostgreSQL
    # can then read them in the order of the (member, time) index instead of sorting.
    gaps = read.frame(
        f"SELECT member_id, COUNT(*), SUM(gap), SUM(gap * gap) FROM ("  # noqa: S608
        f"SELECT member_id, {read.days('occurred_at', 'previous')} AS gap FROM ("
        "SELECT p.member_id, p.occurred_at, LAG(p.occurred_at) OVER "
        "(PARTITION BY p.member_id ORDER BY p.occurred_at) AS previous "
        f"FROM {purchase} p WHERE p.occurred_at < %(cut)s"
        f"{_sample_clause('p.member_id', sample)}) ordered "
        "WHERE previous IS NOT NULL) gaps GROUP BY member_id",
        params,
        ["member_id", "gap_count", "gap_sum", "gap_square_sum"],
    )
    ledger = LedgerTransaction._meta.db_table
    points = read.frame(
        "SELECT t.member_id, SUM(t.member_amount), "  # noqa: S608
        "SUM(CASE WHEN t.kind = %(earn)s THEN t.member_amount ELSE 0 END), "
        "SUM(CASE WHEN t.kind = %(redeem)s THEN -t.member_amount ELSE 0 END) "
        f"FROM {ledger} t WHERE t.occurred_at < %(cut)s{_sample_clause('t.member_id', sample)} "
        "GROUP BY t.member_id",
        {**params, "earn": LedgerTransaction.Kind.EARN, "redeem": LedgerTransaction.Kind.REDEEM},
        ["member_id", "points_balance", "points_earned", "points_redeemed"],
    )
    # A merge moves the merged member's points to the member named in source_ref; the
    # transaction belongs to the giving member, so the receiving side is added here.
    received = read.frame(
        "SELECT t.source_ref, SUM(-t.member_amount) "  # noqa: S608
        f"FROM {ledger} t WHERE t.occurred_at < %(cut)s AND t.kind = %(transfer)s "
        "AND t.source = %(merge)s GROUP BY t.source_ref",
        {
            **params,
            "transfer": LedgerTransaction.Kind.TRANSFER,
            "merge": LedgerTransaction.Source.MERGE,
        },
        ["member_id", "points_received"],
    )
    received["member_id"] = pd.to_numeric(received["member_id"], errors="coerce")
    received = received.dropna(subset=["member_id"]).astype({"member_id": "int64"})
    tiers = read.frame(
        "SELECT member_id, level_rank FROM ("  # noqa: S608
        "SELECT h.member_id, l.rank AS level_rank, ROW_NUMBER() OVER "
        "(PARTITION BY h.member_id ORDER BY h.at DESC, h.id DESC) AS newest "
        f"FROM {TierHistory._meta.db_table} h "
        f"JOIN {TierLevel._meta.db_table} l ON l.id = h.to_level_id "
        f"WHERE h.at < %(cut)s{_sample_clause('h.member_id', sample)}) ranked "
        "WHERE newest = 1",
        params,
        ["member_id", "tier_rank"],
    )

    frame = members
    for part in (purchases, returns, gaps, points, received, tiers):
        frame = frame.merge(part, on="member_id", how="left")
    frame = _derive(frame)
    if horizon_days is not None:
        frame["churned"] = _labels(
            read=read, frame=frame, cut=cut, horizon_days=horizon_days, sample=sample
        )
    return frame.sort_values("member_id", kind="stable").reset_index(drop=True)


def _derive(frame: pd.DataFrame) -> pd.DataFrame:
    zero_filled = (
        "orders_total",
        "orders_30",
        "orders_90",
        "orders_365",
        "orders_90_180",
        "spend_90",
        "spend_365",
        "spend_90_180",
        "spend_total",
        "returned_90",
        "returned_365",
        "returned_90_180",
        "returned_total",
        "points_balance",
        "points_earned",
        "points_redeemed",
        "points_received",
        "tier_rank",
    )
    for column in zero_filled:
        frame[column] = frame[column].fillna(0.0)
    out = pd.DataFrame({"member_id": frame["member_id"], "member_no": frame["member_no"]})
    # floor of the days from the last purchase to the end of the cut-off day = the whole
    # business days between them (Shanghai has no daylight saving).
    out["recency_days"] = np.floor(frame["since_last"])
    out["never_purchased"] = frame["since_last"].isna().astype(float)
    for column in ("orders_30", "orders_90", "orders_365", "orders_total"):
        out[column] = frame[column]
    # Net spend by business date: purchases by their time, returns by the return's time.
    out["net_spend_90"] = frame["spend_90"] - frame["returned_90"]
    out["net_spend_365"] = frame["spend_365"] - frame["returned_365"]
    out["tenure_days"] = frame["tenure_days"]
    count = frame["gap_count"]
    mean = frame["gap_sum"] / count
    out["gap_mean_days"] = mean
    variance = (frame["gap_square_sum"] / count - mean * mean).clip(lower=0)
    out["gap_std_days"] = np.sqrt(variance).where(count >= 2)
    # How late the member is against their own rhythm: 3 means three usual gaps have passed.
    out["recency_to_gap"] = out["recency_days"] / mean.clip(lower=1.0)
    out["orders_trend_90"] = frame["orders_90"] - frame["orders_90_180"]
    out["spend_trend_90"] = out["net_spend_90"] - (frame["spend_90_180"] - frame["returned_90_180"])
    spend = frame["spend_total"]
    out["returns_share"] = (frame["returned_total"] / spend).where(spend > 0, 0.0)
    out["points_balance"] = frame["points_balance"] + frame["points_received"]
    earned = frame["points_earned"]
    out["redeemed_share"] = (frame["points_redeemed"] / earned).where(earned > 0, 0.0)
    out["tier_rank"] = frame["tier_rank"]
    return out


def _labels(
    *,
    read: _Reader,
    frame: pd.DataFrame,
    cut: datetime.datetime,
    horizon_days: int,
    sample: tuple[int, int] | None,
) -> pd.Series:
    """1 where the member made no purchase in [cut, cut + horizon), else 0."""
    bought = read.rows(
        f"SELECT DISTINCT p.member_id FROM {Purchase._meta.db_table} p "  # noqa: S608
        "WHERE p.occurred_at >= %(cut)s AND p.occurred_at < %(end)s"
        f"{_sample_clause('p.member_id', sample)}",
        {"cut": read.time(cut), "end": read.time(cut + datetime.timedelta(days=horizon_days))},
    )
    buyers = {member_id for (member_id,) in bought}
    return (~frame["member_id"].isin(buyers)).astype(int)


def sample_for(*, eligible: int, size: int, index: int) -> tuple[int, int] | None:
    """(modulus, remainder) keeping about `size` of `eligible` members, a different slice of
    the members for each cut-off `index`; None when all fit."""
    if eligible <= size:
        return None
    modulus = math.ceil(eligible / size)
    return modulus, index % modulus
