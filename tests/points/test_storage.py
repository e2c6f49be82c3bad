"""On PostgreSQL the rows every posting or expiry rewrites keep room on their page: a bulk
load's full pages would otherwise send each new version of the row to another page."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from points.ledger import lots_expire, system_account
from points.models import Account, Entry, LedgerTransaction, Lot
from tests.factories import MemberFactory

pytestmark = pytest.mark.postgres

SH = ZoneInfo("Asia/Shanghai")
# Rows for several 8 kB pages: the middle one's page holds only this test's rows, as many
# as the table allows (rows earlier tests rolled back would leave room on the first pages).
ROWS = 400
DUE_EVERY = 20


def block_of(table: str, pk: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (ctid::text::point)[0]::int FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def account_updates() -> tuple[int, int]:
    """(updates, HOT updates) of points_account in this transaction so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'points_account'"
        )
        return cursor.fetchone()


@pytest.mark.django_db
def test_balance_updates_stay_on_the_page_without_touching_indexes():
    members = MemberFactory.create_batch(ROWS)
    accounts = Account.objects.bulk_create(
        Account(kind=Account.Kind.MEMBER, member=member) for member in members
    )
    first = accounts[ROWS // 2]
    page = block_of("points_account", first.pk)
    before = account_updates()
    for balance in range(1, 6):
        first.balance = balance
        first.save(update_fields=["balance", "updated_at"])
    updates, hot = (after - was for after, was in zip(account_updates(), before, strict=True))
    assert updates == 5
    assert hot == 5
    assert block_of("points_account", first.pk) == page


@pytest.mark.django_db
def test_an_expired_lot_stays_on_its_page():
    """A night expires a few lots of each page (a month's worth among a year's)."""
    member = MemberFactory()
    account = Account.objects.create(kind=Account.Kind.MEMBER, member=member)
    earned = datetime.datetime(2025, 1, 10, 12, tzinfo=SH)
    expires = datetime.datetime(2026, 2, 1, tzinfo=SH)
    later = datetime.datetime(2027, 2, 1, tzinfo=SH)
    lots = []
    for n in range(ROWS):
        txn = LedgerTransaction.objects.create(
            kind=LedgerTransaction.Kind.ADJUST,
            idempotency_key=f"storage:{n}",
            fingerprint="-",
            source=LedgerTransaction.Source.STAFF,
            occurred_at=earned,
            member=member,
            member_amount=1,
        )
        lots.append(
            Lot(
                account=account,
                transaction=txn,
                points=1,
                remaining=1,
                earned_at=earned,
                available_at=earned,
                expires_at=expires if n % DUE_EVERY == 0 else later,
            )
        )
    first = Lot.objects.bulk_create(lots)[ROWS // 2]
    # Every ledger transaction has its entries (the guards refuse one without at commit).
    issuance = system_account(Account.Kind.ISSUANCE)
    Entry.objects.bulk_create(
        Entry(transaction_id=lot.transaction_id, account=side, amount=amount)
        for lot in lots
        for side, amount in ((account, 1), (issuance, -1))
    )
    account.balance = ROWS
    account.save(update_fields=["balance"])
    page = block_of("points_lot", first.pk)

    expired = lots_expire(at=expires + datetime.timedelta(hours=1), batch_size=100)

    assert expired == ROWS // DUE_EVERY
    first.refresh_from_db()
    assert first.remaining == 0
    assert block_of("points_lot", first.pk) == page
