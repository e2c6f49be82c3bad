"""The ledger in worked examples, as an accountant would check them."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.db.models import Sum

from points.ledger import (
    IdempotencyConflict,
    InsufficientPoints,
    PointsInDebt,
    account_lock,
    balance_of,
    expiry_for,
    fingerprint,
    points_credit,
    points_debit,
    points_reverse,
    transaction_replayed,
)
from points.models import Account, Entry, LedgerTransaction, Lot
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=SH)


def earn(member, points, when, key):
    with transaction.atomic():
        account = account_lock(member=member)
        return points_credit(
            account=account,
            points=points,
            kind="earn",
            counter_kind="issuance",
            key=key,
            request_fingerprint=fingerprint({"k": key}),
            source="purchase",
            occurred_at=at(when),
        )


def spend(member, points, when, key):
    with transaction.atomic():
        account = account_lock(member=member)
        return points_debit(
            account=account,
            points=points,
            kind="redeem",
            counter_kind="redemption",
            key=key,
            request_fingerprint=fingerprint({"k": key}),
            source="reward",
            occurred_at=at(when),
            now=at(when),
        )


def assert_ledger_reconciles(member):
    account = Account.objects.get(member=member)
    entries = Entry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0
    lots = Lot.objects.filter(account=account).aggregate(s=Sum("remaining"))["s"] or 0
    assert account.balance == entries == lots - account.debt
    for txn in LedgerTransaction.objects.all():
        assert sum(txn.entries.values_list("amount", flat=True)) == 0


def test_points_earned_on_15_march_expire_at_the_end_of_march_next_year():
    assert expiry_for(at("2026-03-15 14:00")) == at("2027-04-01 00:00")
    assert expiry_for(at("2026-12-31 23:59")) == at("2028-01-01 00:00")
    assert expiry_for(at("2028-02-29 10:00")) == at("2029-03-01 00:00")


def test_spending_takes_the_soonest_expiring_points_first():
    member = MemberFactory()
    earn(member, 300, "2026-01-10 10:00", "purchase:A")  # expires 2027-02-01
    earn(member, 500, "2026-06-10 10:00", "purchase:B")  # expires 2027-07-01

    spend(member, 400, "2026-07-01 12:00", "redeem:1")

    lots = {lot.transaction.idempotency_key: lot.remaining for lot in Lot.objects.all()}
    assert lots == {"purchase:A": 0, "purchase:B": 400}
    assert (
        balance_of(account=Account.objects.get(member=member), at=at("2026-07-01 12:00")).available
        == 400
    )
    assert_ledger_reconciles(member)


def test_spending_more_than_available_is_refused_and_posts_nothing():
    member = MemberFactory()
    earn(member, 100, "2026-01-10 10:00", "purchase:A")
    with pytest.raises(InsufficientPoints):
        spend(member, 101, "2026-02-01 10:00", "redeem:1")
    assert LedgerTransaction.objects.count() == 1
    assert_ledger_reconciles(member)


def test_a_return_after_the_points_were_spent_leaves_a_negative_balance_that_blocks_spending():
    member = MemberFactory()
    purchase = earn(member, 1000, "2026-03-01 10:00", "purchase:A")
    spend(member, 900, "2026-03-02 10:00", "redeem:1")

    with transaction.atomic():
        account = account_lock(member=member)
        points_reverse(
            account=account,
            original=purchase,
            points=1000,
            key="return:A",
            request_fingerprint="x",
            source="return",
            occurred_at=at("2026-03-03 10:00"),
        )

    account = Account.objects.get(member=member)
    assert account.balance == -900
    assert account.debt == 900
    assert_ledger_reconciles(member)
    with pytest.raises(PointsInDebt):
        spend(member, 1, "2026-03-04 10:00", "redeem:2")

    # New earnings pay the debt first; only the rest can be spent.
    earn(member, 1000, "2026-03-05 10:00", "purchase:B")
    account.refresh_from_db()
    assert (account.balance, account.debt) == (100, 0)
    assert Lot.objects.get(transaction__idempotency_key="purchase:B").remaining == 100
    assert_ledger_reconciles(member)


def test_a_replayed_key_is_found_and_a_different_request_with_it_is_refused():
    member = MemberFactory()
    first = earn(member, 100, "2026-01-10 10:00", "purchase:A")
    with transaction.atomic():
        account_lock(member=member)
        assert (
            transaction_replayed(
                key="purchase:A", request_fingerprint=fingerprint({"k": "purchase:A"})
            )
            == first
        )
        with pytest.raises(IdempotencyConflict):
            transaction_replayed(key="purchase:A", request_fingerprint=fingerprint({"k": "other"}))


def test_expiry_takes_what_is_left_of_each_due_lot_once():
    from points.services import points_expire

    member = MemberFactory()
    earn(member, 300, "2026-01-10 10:00", "purchase:A")  # expires 2027-02-01 00:00
    earn(member, 200, "2026-01-20 10:00", "purchase:B")  # same month, same expiry
    earn(member, 500, "2026-02-10 10:00", "purchase:C")  # expires 2027-03-01 00:00
    spend(member, 100, "2026-06-01 10:00", "redeem:1")  # from A

    assert points_expire(at=at("2027-01-31 23:59")) == 0
    assert points_expire(at=at("2027-02-01 00:30")) == 2
    assert points_expire(at=at("2027-02-01 00:30")) == 0  # a second run changes nothing

    account = Account.objects.get(member=member)
    assert account.balance == 500
    expiry = LedgerTransaction.objects.get(kind="expire")
    assert expiry.member_amount == -400
    assert expiry.idempotency_key.startswith(f"expire:{account.pk}:2027-01-31:")
    assert_ledger_reconciles(member)
    expired = Entry.objects.filter(account__kind="expiry").aggregate(s=Sum("amount"))["s"]
    assert expired == 400


def test_a_transfer_moves_lots_with_their_expiry_and_settles_debt():
    from points.ledger import points_transfer

    source = MemberFactory()
    target = MemberFactory()
    earn(source, 300, "2026-01-10 10:00", "purchase:S1")
    earned = earn(target, 1000, "2026-02-10 10:00", "purchase:T1")
    spend(target, 900, "2026-02-11 10:00", "redeem:T")
    with transaction.atomic():
        account = account_lock(member=target)
        points_reverse(
            account=account,
            original=earned,
            points=1000,
            key="return:T1",
            request_fingerprint="x",
            source="return",
            occurred_at=at("2026-02-12 10:00"),
        )  # target: balance -900, debt 900

    with transaction.atomic():
        for member in sorted([source, target], key=lambda m: m.pk):
            account_lock(member=member)  # both locked, lower id first, as a merge does
        points_transfer(
            source=Account.objects.get(member=source),
            target=Account.objects.get(member=target),
            key="merge:1",
            occurred_at=at("2026-03-01 10:00"),
        )

    source_account = Account.objects.get(member=source)
    target_account = Account.objects.get(member=target)
    assert (source_account.balance, source_account.debt) == (0, 0)
    assert (target_account.balance, target_account.debt) == (-600, 600)
    assert_ledger_reconciles(source)
    assert_ledger_reconciles(target)
