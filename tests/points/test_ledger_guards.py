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


def unbalanced_notes() -> list:
    with connection.cursor() as cursor:
        cursor.execute("SELECT transaction_id FROM points_entry_unbalanced")
        return cursor.fetchall()


def balanced_pair(member, key: str, actor=None):
    """A transaction and the member's account, for entries written as the services do."""
    txn = LedgerTransaction.objects.create(
        actor=actor,
        kind="adjust",
        idempotency_key=key,
        fingerprint="x",
        source="staff",
        occurred_at=timezone.now(),
        member=member,
        member_amount=5,
    )
    account, _ = Account.objects.get_or_create(kind="member", member=member)
    return txn, account


def test_an_unbalanced_batch_written_in_one_statement_is_refused():
    # A bulk writer's INSERT … SELECT: one statement, many transactions, one of them wrong.
    first, second = MemberFactory(), MemberFactory()
    issuance = system_account("issuance")
    with pytest.raises(DatabaseError, match="sum to 1, not 0"), transaction.atomic():
        good, good_account = balanced_pair(first, "adjust:good")
        bad, bad_account = balanced_pair(second, "adjust:bad")
        pairs = (good.pk, good_account.pk, good.pk, issuance.pk)
        pairs += (bad.pk, bad_account.pk, bad.pk, issuance.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO points_entry (transaction_id, account_id, amount) VALUES "
                "(%s, %s, 5), (%s, %s, -5), (%s, %s, 5), (%s, %s, -4)",
                pairs,
            )
    assert not Entry.objects.exists()
    assert not LedgerTransaction.objects.exists()


def test_a_batch_that_balances_in_one_statement_is_accepted():
    members = MemberFactory.create_batch(3)
    issuance = system_account("issuance")
    with transaction.atomic():
        rows = []
        for index, member in enumerate(members):
            txn, account = balanced_pair(member, f"adjust:{index}")
            rows += [txn.pk, account.pk, txn.pk, issuance.pk]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO points_entry (transaction_id, account_id, amount) VALUES "
                + ", ".join(["(%s, %s, 5), (%s, %s, -5)"] * len(members)),
                rows,
            )
    assert Entry.objects.count() == 6
    assert not unbalanced_notes()


def test_entries_of_one_transaction_may_arrive_in_several_statements_if_they_balance():
    member = MemberFactory()
    issuance = system_account("issuance")
    with transaction.atomic():
        txn, account = balanced_pair(member, "adjust:split")
        Entry.objects.create(transaction=txn, account=account, amount=5)
        Entry.objects.create(transaction=txn, account=issuance, amount=-3)
        Entry.objects.create(transaction=txn, account=system_account("adjustment"), amount=-2)
    assert Entry.objects.filter(transaction=txn).count() == 3
    # The note kept for the check at commit is gone with it.
    assert not unbalanced_notes()

    with pytest.raises(DatabaseError, match="sum to 1, not 0"), transaction.atomic():
        txn, account = balanced_pair(member, "adjust:split-wrong")
        Entry.objects.create(transaction=txn, account=account, amount=5)
        Entry.objects.create(transaction=txn, account=issuance, amount=-4)
    assert not LedgerTransaction.objects.filter(idempotency_key="adjust:split-wrong").exists()


def test_a_statement_that_changes_no_ledger_row_is_allowed_and_one_that_does_is_not(store):
    # Deleting a staff login sets actor_id to NULL on its transactions (SET_NULL): with no
    # transactions that statement changes nothing and the login goes; with some, it is refused.
    from members.models import User
    from tests.factories import UserFactory

    idle, active = UserFactory(is_staff=True), UserFactory(is_staff=True)
    with transaction.atomic():
        txn, account = balanced_pair(MemberFactory(), "adjust:actor", actor=active)
        Entry.objects.create(transaction=txn, account=account, amount=5)
        Entry.objects.create(transaction=txn, account=system_account("adjustment"), amount=-5)
    idle.delete()
    assert not User.objects.filter(pk=idle.pk).exists()
    with pytest.raises(DatabaseError, match="append-only: UPDATE"), transaction.atomic():
        active.delete()
    assert User.objects.filter(pk=active.pk).exists()


def test_truncate_is_refused_outside_the_test_database():
    # The test runner empties its own test_… database with TRUNCATE between tests; anywhere
    # else the same function refuses it (here on a scratch table, without that exception).
    with (
        pytest.raises(DatabaseError, match="append-only: TRUNCATE"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("CREATE TEMP TABLE scratch (id int)")
        cursor.execute(
            "CREATE TRIGGER scratch_no_truncate BEFORE TRUNCATE ON scratch "
            "FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_refuse_change()"
        )
        cursor.execute("TRUNCATE scratch")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'points_entry'::regclass "
            "AND tgtype & 32 = 32"  # TRIGGER_TYPE_TRUNCATE
        )
        assert cursor.fetchall() == [("points_entry_no_truncate",)]


def test_a_transaction_without_entries_cannot_commit():
    member = MemberFactory()
    with pytest.raises(DatabaseError, match="has no entries"), transaction.atomic():
        balanced_pair(member, "adjust:empty")
    assert not LedgerTransaction.objects.exists()
    # Nor among others written in one statement, all but one with their entries later.
    issuance = system_account("issuance")
    with pytest.raises(DatabaseError, match="has no entries"), transaction.atomic():
        good, account = balanced_pair(member, "adjust:full")
        balanced_pair(MemberFactory(), "adjust:left-empty")
        Entry.objects.bulk_create(
            [
                Entry(transaction=good, account=account, amount=5),
                Entry(transaction=good, account=issuance, amount=-5),
            ]
        )
    assert not LedgerTransaction.objects.exists()


def test_a_transaction_written_with_its_entries_in_one_statement_leaves_no_note():
    member = MemberFactory()
    account = Account.objects.create(kind="member", member=member)
    issuance = system_account("issuance")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "WITH t AS (INSERT INTO points_ledgertransaction (kind, idempotency_key, "
            "fingerprint, source, source_ref, reason, occurred_at, recorded_at, member_id, "
            "member_amount) VALUES ('adjust', 'adjust:one', 'x', 'staff', '', '', now(), now(), "
            "%s, 5) RETURNING id) "
            "INSERT INTO points_entry (transaction_id, account_id, amount) "
            "SELECT t.id, v.account_id, v.amount FROM t, (VALUES (%s, 5), (%s, -5)) "
            "AS v(account_id, amount)",
            [member.pk, account.pk, issuance.pk],
        )
        assert not unbalanced_notes()
    assert Entry.objects.count() == 2
