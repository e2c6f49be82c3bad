"""The points jobs of the nightly chain: expiry, reminders, reconcile.

Each takes the business date (Asia/Shanghai) and returns (rows touched, details); each is
idempotent and works set-based.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db import connection
from django.utils.translation import gettext as _

from members.messaging import member_notify
from members.models import Member

from .birthday import birthday_gifts_issue, birthday_notices_send
from .ledger import BUSINESS_TZ
from .models import Account, Entry, ExpiryReminder, Lot
from .services import coupons_expire, points_expire

REMINDER_DAYS = (30, 7)


def start_of(business_date: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(business_date, datetime.time(), tzinfo=BUSINESS_TZ)


def expiry_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Expire every lot whose last day was before this date; also past-due coupons."""
    at = start_of(business_date)
    lots = points_expire(at=at)
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
        days_left = (last_day - business_date).days
        kind = next((d for d in sorted(REMINDER_DAYS) if days_left <= d), None)
        if kind is None:
            continue
        wanted.append(
            ExpiryReminder(
                member_id=member_id, expires_on=last_day, days_before=kind, points=points
            )
        )
    ExpiryReminder.objects.bulk_create(wanted, ignore_conflicts=True, batch_size=5000)
    pending = ExpiryReminder.objects.filter(sent_at__isnull=True).select_related("member")
    sent = 0
    for reminder in pending.iterator(chunk_size=1000):
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


def reconcile_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Check the ledger: per member account balance = Σ entries = Σ open lots − debt, and
    every transaction's entries sum to zero. A mismatch fails the run with the accounts."""
    account = Account._meta.db_table
    entry = Entry._meta.db_table
    lot = Lot._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.id, a.member_id, a.balance, a.debt, COALESCE(e.total, 0), COALESCE(l.total, 0)
            FROM {account} a
            LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM {entry} GROUP BY account_id) e
                ON e.account_id = a.id
            LEFT JOIN (SELECT account_id, SUM(remaining) AS total FROM {lot}
                       WHERE remaining > 0 GROUP BY account_id) l
                ON l.account_id = a.id
            WHERE a.member_id IS NOT NULL
              AND (a.balance <> COALESCE(e.total, 0) OR a.balance <> COALESCE(l.total, 0) - a.debt)
            ORDER BY a.id
            LIMIT 1000
            """  # noqa: S608 - table names come from the models, not from input
        )
        mismatches = [
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
        cursor.execute(
            f"SELECT transaction_id, SUM(amount) FROM {entry} GROUP BY transaction_id "  # noqa: S608
            "HAVING SUM(amount) <> 0 LIMIT 1000"
        )
        unbalanced = [{"transaction": row[0], "sum": int(row[1])} for row in cursor.fetchall()]
        cursor.execute(f"SELECT COUNT(*) FROM {account}")  # noqa: S608
        checked = cursor.fetchone()[0]
    details: dict[str, Any] = {
        "accounts_checked": checked,
        "mismatches": mismatches,
        "unbalanced_transactions": unbalanced,
    }
    if mismatches or unbalanced:
        details["failed"] = (
            f"{len(mismatches)} account(s) and {len(unbalanced)} transaction(s) do not reconcile"
        )
    return checked, details


def birthday_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Birthday coupons for the month's members on a level that has one, once a year."""
    issued = birthday_gifts_issue(business_date=business_date)
    told = birthday_notices_send(year=business_date.year)
    return issued, {"coupons": issued, "notices": told}
