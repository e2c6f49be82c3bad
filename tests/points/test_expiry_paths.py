"""Expiry on PostgreSQL: the one-statement batch writes exactly what the ORM batch writes, a
rerun of either after the other finds nothing, and the two-connection run expires it all."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.models import Member
from points import ledger
from points.jobs import reconcile_job
from points.models import Account, Entry, LedgerTransaction, Lot, LotMovement
from points.services import points_expire, purchase_record
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.postgres

SH = ZoneInfo("Asia/Shanghai")
AFTER = datetime.datetime(2027, 3, 1, 0, 30, tzinfo=SH)  # Jan and Feb 2026 lots are due


def member_with_lots(store, prefix: str):
    """Two lots expiring on the same day (one posting) and one on another day."""
    member = MemberFactory()
    for receipt, day, amount in (
        ("A", datetime.datetime(2026, 1, 5, 12, tzinfo=SH), 120),
        ("B", datetime.datetime(2026, 1, 20, 12, tzinfo=SH), 80),
        ("C", datetime.datetime(2026, 2, 3, 12, tzinfo=SH), 50),
    ):
        purchase_record(
            member=member,
            store=store,
            receipt_no=f"{prefix}{receipt}",
            occurred_at=day,
            now=day,
            amount=Decimal(amount),
        )
    return member


def expiry_rows(member) -> list[tuple]:
    account = Account.objects.get(member=member)
    rows = []
    for txn in LedgerTransaction.objects.filter(
        member=member, kind=LedgerTransaction.Kind.EXPIRE
    ).order_by("source_ref"):
        key = txn.idempotency_key.replace(f"expire:{account.pk}:", "expire:<account>:")
        key = key.rsplit(":", 1)[0]  # the first lot's id differs between the two members
        entries = sorted(
            (e.account_id == account.pk, e.amount) for e in Entry.objects.filter(transaction=txn)
        )
        movements = sorted(
            m.amount for m in LotMovement.objects.filter(transaction=txn).order_by("amount")
        )
        rows.append(
            (
                key,
                txn.source,
                txn.source_ref,
                txn.occurred_at,
                txn.member_amount,
                txn.reason,
                entries,
                movements,
            )
        )
    return rows


@pytest.mark.django_db
def test_the_sql_batch_writes_what_the_orm_batch_writes():
    store = StoreFactory()
    by_orm, by_sql = member_with_lots(store, "O"), member_with_lots(store, "S")
    orm_account = Account.objects.get(member=by_orm)
    sql_account = Account.objects.get(member=by_sql)

    assert ledger.lots_expire_batch_orm(account_ids=[orm_account.pk], at=AFTER) == 3
    assert ledger.lots_expire_batch_sql(account_ids=[sql_account.pk], at=AFTER) == 3

    orm_rows = expiry_rows(by_orm)
    assert orm_rows == expiry_rows(by_sql)
    assert [row[4] for row in orm_rows] == [-200, -50]  # one posting per expiry day
    # The fingerprints name each member's own account, the same way on both paths.
    for member, account in ((by_orm, orm_account), (by_sql, sql_account)):
        for txn in LedgerTransaction.objects.filter(member=member, kind="expire"):
            assert txn.fingerprint == ledger.fingerprint(
                {"account": account.pk, "day": txn.source_ref}
            )
        account.refresh_from_db()
        assert account.balance == 0
        assert not Lot.objects.filter(account=account, remaining__gt=0).exists()

    # Each path after the other finds nothing left to do.
    assert ledger.lots_expire_batch_sql(account_ids=[orm_account.pk], at=AFTER) == 0
    assert ledger.lots_expire_batch_orm(account_ids=[sql_account.pk], at=AFTER) == 0
    assert "failed" not in reconcile_job(AFTER.date())[1]


@pytest.mark.django_db(transaction=True)
def test_two_connections_expire_every_due_lot_once():
    store = StoreFactory()
    members = [member_with_lots(store, f"M{i}-") for i in range(7)]
    # One account a batch: seven batches shared by two connections.
    assert points_expire(at=AFTER, batch_size=1, workers=2) == 21
    assert points_expire(at=AFTER, batch_size=1, workers=2) == 0
    assert LedgerTransaction.objects.filter(kind="expire").count() == 14
    for member in members:
        assert Account.objects.get(member=member).balance == 0
    assert "failed" not in reconcile_job(AFTER.date())[1]


@pytest.mark.django_db
def test_the_sql_reminder_plan_finds_what_the_python_plan_finds():
    from members.messaging import member_reachable
    from points import jobs
    from points.models import ExpiryReminder

    store = StoreFactory()
    members = [member_with_lots(store, f"R{index}-") for index in range(4)]
    # Two whom SMS reaches, two whom nothing does: the SQL plan settles the latter at once.
    Member.objects.filter(pk__in=[m.pk for m in members[:2]]).update(consent_sms=True)
    Member.objects.filter(pk__in=[m.pk for m in members[2:]]).update(
        consent_sms=False, consent_email=False
    )
    reachable = set(Member.objects.filter(member_reachable()).values_list("pk", flat=True))
    assert reachable == {m.pk for m in members[:2]}
    # 2027-01-25: January's lots have 6 days left (the 7-day reminder), February's 34 (none);
    # 2027-01-31 and 2027-02-01 move the window on.
    for day in ("2027-01-25", "2027-01-31", "2027-02-01"):
        business_date = datetime.date.fromisoformat(day)
        at = jobs.start_of(business_date)
        horizon = at + datetime.timedelta(days=max(jobs.REMINDER_DAYS) + 1)
        plans = []
        for plan in (jobs.reminders_plan, jobs.reminders_plan_sql):
            ExpiryReminder.objects.all().delete()
            plan(business_date=business_date, at=at, horizon=horizon)
            plans.append(
                sorted(
                    ExpiryReminder.objects.values_list(
                        "member_id", "expires_on", "days_before", "points"
                    )
                )
            )
        assert plans[0] == plans[1]
        assert plans[0], day  # each of these days has reminders due
        settled = set(
            ExpiryReminder.objects.filter(sent_at__isnull=False).values_list("member_id", flat=True)
        )
        assert settled == {member_id for member_id, *_rest in plans[1]} - reachable, day
