"""The database itself refuses to rewrite the ledger (PostgreSQL triggers)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from points.ledger import system_account
from points.models import Account, Entry, LedgerTransaction
from tests.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def post_one(member):
    txn = LedgerTransaction.objects.create(
        kind="adjust",
        idempotency_key="adjust:test",
        fingerprint="x",
        source="staff",
        occurred_at=timezone.now(),
        member=member,
        member_amount=5,
    )
    account = Account.objects.create(kind="member", member=member)
    return txn, account


def test_entries_that_do_not_sum_to_zero_are_refused_at_commit():
    member = MemberFactory()
    with pytest.raises(DatabaseError, match="sum to"), transaction.atomic():
        txn, account = post_one(member)
        Entry.objects.create(transaction=txn, account=account, amount=5)
    assert not LedgerTransaction.objects.exists()


def test_entries_and_transactions_cannot_be_updated_or_deleted():
    member = MemberFactory()
    with transaction.atomic():
        txn, account = post_one(member)
        Entry.objects.create(transaction=txn, account=account, amount=5)
        Entry.objects.create(transaction=txn, account=system_account("adjustment"), amount=-5)
    for statement in (
        "UPDATE points_entry SET amount = amount + 1",
        "DELETE FROM points_entry",
        "UPDATE points_ledgertransaction SET reason = 'changed'",
        "DELETE FROM points_ledgertransaction",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert Entry.objects.count() == 2
