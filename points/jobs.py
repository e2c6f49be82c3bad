"""The points jobs of the nightly chain: expiry, reminders, reconcile.

Each takes the business date (Asia/Shanghai) and returns (rows touched, details); each is
idempotent and works set-based.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members.messaging import member_notify, member_reachable
from members.models import Member
from tiers.models import TierHistory

from .birthday import birthday_gifts_issue, birthday_notices_send
from .ledger import BUSINESS_TZ
from .models import Account, Entry, ExpiryReminder, LedgerTransaction, Lot
from .services import coupons_expire, points_expire

REMINDER_DAYS = (30, 7)


def start_of(business_date: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(business_date, datetime.time(), tzinfo=BUSINESS_TZ)


# Connections the expiry works on (PostgreSQL): batches of different accounts never wait on
# each other, so two keep both cores of a small machine busy.
EXPIRY_WORKERS = 2


def expiry_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Expire every lot whose last day was before this date; also past-due coupons.

    Batches of settings.POINTS_EXPIRY_BATCH accounts, one transaction each; the Jobs page
    shows the lots done after each batch.
    """
    at = start_of(business_date)
    lots = points_expire(at=at, workers=EXPIRY_WORKERS)
    coupons = coupons_expire(at=at)
    return lots, {"lots_expired": lots, "coupons_expired": coupons}


def reminders_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Remind members 30 and 7 days before points expire, once each (by consent).

    Within 7 days only the 7-day reminder goes out, so a member first seen late is told once.
    A reminder row is written before its message is sent and marked sent after, so a crash
    in between sends at most that one message again.
    """
    at = start_of(business_date)
    horizon = at + datetime.timedelta(days=max(REMINDER_DAYS) + 1)
    if connection.vendor == "postgresql":
        done = reminders_plan_sql(business_date=business_date, at=at, horizon=horizon)
    else:
        done = reminders_plan(business_date=business_date, at=at, horizon=horizon)
    pending = ExpiryReminder.objects.filter(sent_at__isnull=True)
    # Members no channel reaches get the portal banner only: their reminders are done in
    # one statement instead of one UPDATE each.
    reachable = member_reachable(path="member__")
    sent = done + pending.exclude(reachable).update(
        sent_at=datetime.datetime.now(tz=BUSINESS_TZ), channels=[]
    )
    for reminder in pending.filter(reachable).select_related("member").iterator(chunk_size=1000):
        member: Member = reminder.member
        text = _(
            "会员 Loyalty: %(points)s of your points expire after %(date)s. Use them before then."
        ) % {"points": reminder.points, "date": reminder.expires_on.isoformat()}
        channels = member_notify(member=member, subject=_("Your points expire soon"), text=text)
        ExpiryReminder.objects.filter(pk=reminder.pk).update(
            sent_at=datetime.datetime.now(tz=BUSINESS_TZ), channels=channels
        )
        sent += 1
    return sent, {"reminders": sent}


def _reminder_kind(days_left: int) -> int | None:
    return next((d for d in sorted(REMINDER_DAYS) if days_left <= d), None)


def reminders_plan(
    *, business_date: datetime.date, at: datetime.datetime, horizon: datetime.datetime
) -> int:
    """The reminders due by this date (member, last day, which one, points), written once;
    returns how many were written as done (none here: the job settles them after)."""
    rows = (
        Lot.objects.open()
        .filter(expires_at__gt=at, expires_at__lte=horizon, account__member__isnull=False)
        .values_list("account__member_id", "expires_at", "remaining")
    )
    due: dict[tuple[int, datetime.date], int] = {}
    for member_id, expires_at, remaining in rows:
        last_day = expires_at.astimezone(BUSINESS_TZ).date() - datetime.timedelta(days=1)
        due[(member_id, last_day)] = due.get((member_id, last_day), 0) + remaining
    wanted = []
    for (member_id, last_day), points in due.items():
        kind = _reminder_kind((last_day - business_date).days)
        if kind is None:
            continue
        wanted.append(
            ExpiryReminder(
                member_id=member_id, expires_on=last_day, days_before=kind, points=points
            )
        )
    ExpiryReminder.objects.bulk_create(wanted, ignore_conflicts=True, batch_size=5000)
    return 0


def reminders_plan_sql(
    *, business_date: datetime.date, at: datetime.datetime, horizon: datetime.datetime
) -> int:
    """`reminders_plan` as one INSERT … SELECT: half a million reminders on the first of a
    month would otherwise travel to Python and back. Members no channel reaches get theirs
    written as done (the portal banner is all they see), so only the others wait to be sent."""
    kinds = " ".join(f"WHEN days_left <= {int(d)} THEN {int(d)}" for d in sorted(REMINDER_DAYS))
    reachable, reachable_params = (
        Member.objects.filter(member_reachable()).values("pk").query.sql_with_params()
    )
    now = timezone.now()
    tz = str(BUSINESS_TZ)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH written AS (
            INSERT INTO {ExpiryReminder._meta.db_table}
                (member_id, expires_on, days_before, points, channels, created_at, sent_at)
            SELECT member_id, last_day, kind, points, '[]'::jsonb, %s,
                   CASE WHEN member_id IN ({reachable}) THEN NULL ELSE %s END
            FROM (
                SELECT member_id, last_day, SUM(remaining) AS points,
                       CASE {kinds} END AS kind
                FROM (
                    SELECT a.member_id, l.remaining,
                           (l.expires_at AT TIME ZONE %s)::date - 1 AS last_day,
                           (l.expires_at AT TIME ZONE %s)::date - 1 - %s AS days_left
                    FROM {Lot._meta.db_table} l
                    JOIN {Account._meta.db_table} a ON a.id = l.account_id
                    WHERE l.remaining > 0 AND l.expires_at > %s AND l.expires_at <= %s
                      AND a.member_id IS NOT NULL
                ) AS lots
                GROUP BY member_id, last_day, days_left
            ) AS due
            WHERE kind IS NOT NULL
            ON CONFLICT DO NOTHING
            RETURNING sent_at
            )
            SELECT COUNT(sent_at) FROM written
            """,  # noqa: S608 - table names from the models, kinds from a constant
            [now, *reachable_params, now, tz, tz, business_date, at, horizon],
        )
        return cursor.fetchone()[0]


SUM_ZERO_TRIGGER = "points_entry_sum_zero"
# Every guard trigger by table (points migrations 0025 and 0029, tiers migration 0002): the
# ledger and tier history are append-only, a ledger transaction has entries that sum to zero.
GUARD_TRIGGERS: dict[str, tuple[str, ...]] = {
    Entry._meta.db_table: (
        SUM_ZERO_TRIGGER,
        "points_entry_no_update",
        "points_entry_no_delete",
        "points_entry_no_truncate",
    ),
    # Where a transaction left unbalanced by one statement waits for the check at commit.
    "points_entry_unbalanced": ("points_entry_unbalanced_check",),
    LedgerTransaction._meta.db_table: (
        # A transaction must have entries (points migration 0029).
        "points_ledgertransaction_has_entries",
        "points_ledgertransaction_no_update",
        "points_ledgertransaction_no_delete",
        "points_ledgertransaction_no_truncate",
    ),
    TierHistory._meta.db_table: ("tiers_history_append_only",),
}


def reconcile_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Check the ledger: per member account balance = Σ entries = Σ open lots − debt, and
    every transaction's entries sum to zero. A mismatch fails the run with the accounts.

    Everything is checked, every night: two aggregate scans of the entries, side by side on
    two connections on PostgreSQL (see README for the time at ten million purchases), so no
    gap opens for a transaction that committed late or went around the guard. Each check is
    one statement, so each sees one consistent snapshot. On PostgreSQL the run also fails if
    any guard trigger (GUARD_TRIGGERS) is missing or switched off, since the guards are what
    refuse a bad posting or a rewrite before it lands; the nightly check only finds it after.
    """
    mismatches, unbalanced = _side_by_side(_balance_mismatches, _unbalanced_transactions)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {Account._meta.db_table}")  # noqa: S608
        checked = cursor.fetchone()[0]
    large, large_count = _large_postings(business_date)
    details: dict[str, Any] = {
        "accounts_checked": checked,
        "mismatches": mismatches,
        "unbalanced_transactions": unbalanced,
        # Not a failure: postings big enough for the auditor to look at.
        "large_postings_threshold": settings.RECONCILE_LARGE_POSTING_POINTS,
        "large_postings_from": start_of(business_date - datetime.timedelta(days=1)).isoformat(),
        "large_postings_until": start_of(business_date).isoformat(),
        "large_postings_count": large_count,
        "large_postings": large,
    }
    problems = []
    if mismatches or unbalanced:
        problems.append(
            f"{len(mismatches)} account(s) and {len(unbalanced)} transaction(s) do not reconcile"
        )
    if connection.vendor == "postgresql":
        for trigger, state in _guard_states().items():
            if state != "enabled":
                problems.append(f"the ledger guard {trigger} is {state}")
    if problems:
        details["failed"] = "; ".join(problems)
    return checked, details


LARGE_POSTINGS_LISTED = 1000


def _large_postings(business_date: datetime.date) -> tuple[list[dict[str, Any]], int]:
    """The postings recorded on the business day the night closes (the day before
    `business_date`, Asia/Shanghai) that moved a member's account by at least
    RECONCILE_LARGE_POSTING_POINTS either way: the first LARGE_POSTINGS_LISTED of them by
    time, and how many there were. One range query on recorded_at (a BRIN index on
    PostgreSQL, points migration 0020_ledger_recorded_at_brin), whatever the size of the
    ledger."""
    threshold = settings.RECONCILE_LARGE_POSTING_POINTS
    rows = LedgerTransaction.objects.filter(
        recorded_at__gte=start_of(business_date - datetime.timedelta(days=1)),
        recorded_at__lt=start_of(business_date),
    ).filter(Q(member_amount__gte=threshold) | Q(member_amount__lte=-threshold))
    listed = [
        {
            "transaction": row["pk"],
            "member": row["member_id"],
            "member_no": row["member__member_no"],
            "points": int(row["member_amount"]),
            "kind": row["kind"],
            "source": row["source"],
            "reference": row["source_ref"],
            "reason": row["reason"],
            "actor": row["actor_id"],
            "recorded_at": row["recorded_at"].isoformat(),
        }
        for row in rows.order_by("recorded_at", "pk").values(
            "pk",
            "member_id",
            "member__member_no",
            "member_amount",
            "kind",
            "source",
            "source_ref",
            "reason",
            "actor_id",
            "recorded_at",
        )[:LARGE_POSTINGS_LISTED]
    ]
    count = len(listed) if len(listed) < LARGE_POSTINGS_LISTED else rows.count()
    return listed, count


def _side_by_side(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """Both results; on PostgreSQL outside a transaction `second` runs at the same time on a
    connection of its own (a transaction's uncommitted rows would be invisible to it)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return first(), second()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = second()
        except BaseException as error:  # raised again by the calling thread
            outcome["error"] = error
        finally:
            connections.close_all()  # this thread's connection only

    thread = threading.Thread(target=run)
    thread.start()
    try:
        value = first()
    finally:
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return value, outcome["value"]


def _balance_mismatches() -> list[dict[str, int]]:
    """Member accounts whose cached balance is not Σ entries or not Σ open lots − debt.

    Aggregated first (in parallel on PostgreSQL), then joined: with a LIMIT on the join the
    planner would walk both tables in account order instead, one index lookup a row.
    """
    account = Account._meta.db_table
    entry = Entry._meta.db_table
    lot = Lot._meta.db_table
    system = list(Account.objects.filter(member__isnull=True).values_list("pk", flat=True)) or [0]
    materialized = "MATERIALIZED" if connection.vendor == "postgresql" else ""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL jit = off")
        placeholders = ", ".join(["%s"] * len(system))
        cursor.execute(
            f"""
            WITH e AS {materialized} (
                SELECT account_id, SUM(amount) AS total FROM {entry}
                WHERE account_id NOT IN ({placeholders}) GROUP BY account_id
            ),
            l AS {materialized} (
                SELECT account_id, SUM(remaining) AS total FROM {lot}
                WHERE remaining > 0 GROUP BY account_id
            )
            SELECT a.id, a.member_id, a.balance, a.debt, COALESCE(e.total, 0),
                   COALESCE(l.total, 0)
            FROM {account} a
            LEFT JOIN e ON e.account_id = a.id
            LEFT JOIN l ON l.account_id = a.id
            WHERE a.member_id IS NOT NULL
              AND (a.balance <> COALESCE(e.total, 0) OR a.balance <> COALESCE(l.total, 0) - a.debt)
            ORDER BY a.id
            LIMIT 1000
            """,  # noqa: S608 - table names come from the models, not from input
            system,
        )
        return [
            {
                "account": row[0],
                "member": row[1],
                # int(): PostgreSQL sums as numeric (Decimal), which JSON cannot store.
                "balance": int(row[2]),
                "debt": int(row[3]),
                "entries": int(row[4]),
                "lots": int(row[5]),
            }
            for row in cursor.fetchall()
        ]


def _unbalanced_transactions() -> list[dict[str, int]]:
    """Transactions whose entries do not sum to 0."""
    entry = Entry._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL work_mem = '256MB'")  # hash aggregate in memory
        cursor.execute(
            f"SELECT transaction_id, SUM(amount) FROM {entry} "  # noqa: S608
            "GROUP BY transaction_id HAVING SUM(amount) <> 0 ORDER BY transaction_id LIMIT 1000"
        )
        return [{"transaction": row[0], "sum": int(row[1])} for row in cursor.fetchall()]


def _guard_states() -> dict[str, str]:
    """Each guard trigger's state: 'enabled', 'disabled' or 'missing'."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname = ANY(%s) AND c.relnamespace = current_schema()::regnamespace",
            [list(GUARD_TRIGGERS)],
        )
        found = {(table, name): enabled for table, name, enabled in cursor.fetchall()}
        # A role or database set to replica by default (ALTER ROLE … SET) skips them too.
        cursor.execute("SELECT current_setting('session_replication_role')")
        role = cursor.fetchone()[0]
    states = {}
    for table, triggers in GUARD_TRIGGERS.items():
        for trigger in triggers:
            enabled = found.get((table, trigger))
            if enabled is None:
                states[trigger] = "missing"
            # 'O' fires in normal sessions, 'A' always; 'D' never, 'R' only in replica ones.
            elif enabled == "A" or (enabled == "O" and role != "replica"):
                states[trigger] = "enabled"
            else:
                states[trigger] = "disabled"
    return states


def birthday_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Birthday coupons for the month's members on a level that has one, once a year."""
    issued = birthday_gifts_issue(business_date=business_date)
    told = birthday_notices_send(year=business_date.year)
    return issued, {"coupons": issued, "notices": told}
