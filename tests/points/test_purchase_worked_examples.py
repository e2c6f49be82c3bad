"""Purchases and returns in worked examples."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from points.ledger import IdempotencyConflict, InsufficientPoints
from points.models import Account, CategoryRate, EarningPolicy, LedgerTransaction, Lot, Purchase
from points.services import LineInput, ReturnExceedsPurchase, purchase_record, return_record
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
MARCH = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


def buy(member, store, receipt, amount, *, lines=(), points_to_use=0, when=MARCH):
    return purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=when,
        amount=Decimal(amount),
        lines=list(lines),
        points_to_use=points_to_use,
        now=when,
    ).purchase


def balance(member):
    return Account.objects.get(member=member).balance


def test_a_purchase_of_128_yuan_50_earns_128_points_expiring_end_of_march_next_year(store):
    member = MemberFactory(birthday=datetime.date(1990, 7, 1))
    purchase = buy(member, store, "R1", "128.50")
    assert purchase.points_earned == 128
    lot = Lot.objects.get()
    assert lot.expires_at == datetime.datetime(2027, 4, 1, tzinfo=SH)
    assert balance(member) == 128


def test_excluded_and_special_rate_categories(store):
    CategoryRate.objects.create(category="gift_card", rate=0)
    CategoryRate.objects.create(category="cosmetics", rate=Decimal("2"))
    member = MemberFactory()
    purchase = buy(
        member,
        store,
        "R1",
        "300",
        lines=[
            LineInput(sku="GC100", category="gift_card", amount=Decimal("100")),
            LineInput(sku="LIP", category="cosmetics", amount=Decimal("100")),
            LineInput(sku="TEE", category="apparel", amount=Decimal("100")),
        ],
    )
    assert purchase.points_earned == 0 + 200 + 100


def test_birthday_month_purchases_earn_double(store):
    member = MemberFactory(birthday=datetime.date(1990, 3, 2))
    assert buy(member, store, "R1", "100").points_earned == 200


def test_points_as_payment_are_redeemed_and_only_the_rest_earns(store):
    member = MemberFactory()
    buy(member, store, "R1", "1000")  # 1000 points
    purchase = buy(member, store, "R2", "200", points_to_use=500)  # ¥5 paid with points
    assert purchase.points_used == 500
    assert purchase.points_earned == 195
    assert purchase.payment_transaction.member_amount == -500
    assert balance(member) == 1000 - 500 + 195


def test_points_as_payment_beyond_the_balance_is_refused_and_nothing_is_recorded(store):
    member = MemberFactory()
    buy(member, store, "R1", "100")
    with pytest.raises(InsufficientPoints):
        buy(member, store, "R2", "200", points_to_use=200)
    assert not Purchase.objects.filter(receipt_no="R2").exists()
    assert balance(member) == 100


def test_the_same_receipt_twice_posts_once_and_different_details_are_refused(store):
    member = MemberFactory()
    first = buy(member, store, "R1", "100")
    again = buy(member, store, "R1", "100")
    assert again.pk == first.pk
    assert LedgerTransaction.objects.filter(kind="earn").count() == 1
    with pytest.raises(IdempotencyConflict):
        buy(member, store, "R1", "101")


def test_two_half_returns_reverse_exactly_what_one_full_return_would(store):
    member = MemberFactory()
    buy(member, store, "R1", "99.00")  # 99 points
    first = return_record(
        store=store,
        receipt_no="X1",
        original_receipt_no="R1",
        amount=Decimal("49.50"),
        occurred_at=MARCH,
    ).purchase_return
    second = return_record(
        store=store,
        receipt_no="X2",
        original_receipt_no="R1",
        amount=Decimal("49.50"),
        occurred_at=MARCH,
    ).purchase_return
    assert (first.points_reversed, second.points_reversed) == (49, 50)
    assert balance(member) == 0
    with pytest.raises(ReturnExceedsPurchase):
        return_record(
            store=store,
            receipt_no="X3",
            original_receipt_no="R1",
            amount=Decimal("0.01"),
            occurred_at=MARCH,
        )


def test_a_return_after_spending_takes_the_balance_negative(store):
    member = MemberFactory()
    buy(member, store, "R1", "1000")
    buy(member, store, "R2", "50", points_to_use=900)  # spends 900, earns 41
    return_record(
        store=store,
        receipt_no="X1",
        original_receipt_no="R1",
        amount=Decimal("1000"),
        occurred_at=MARCH,
    )
    account = Account.objects.get(member=member)
    assert account.balance == 1000 - 900 + 41 - 1000
    assert account.debt == 859


def test_pending_days_hold_purchase_points_back(store):
    EarningPolicy.objects.create(pending_days=7)
    member = MemberFactory()
    buy(member, store, "R1", "100")
    with pytest.raises(InsufficientPoints):
        buy(member, store, "R2", "10", points_to_use=100, when=MARCH + datetime.timedelta(days=3))
    buy(member, store, "R3", "10", points_to_use=100, when=MARCH + datetime.timedelta(days=8))
