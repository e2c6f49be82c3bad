"""Rewards and coupons in worked examples."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from points.ledger import InsufficientPoints
from points.models import Account, Coupon, Lot, Reward
from points.services import (
    CouponExpired,
    CouponUsed,
    LimitReached,
    OutOfStock,
    TierRequired,
    coupon_use,
    purchase_record,
    redemption_void,
    reward_redeem,
)
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture
def cny10(db):
    return Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal("10"),
    )


def member_with_points(store, points, receipt="R1"):
    member = MemberFactory()
    purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=NOW,
        amount=Decimal(points),
        now=NOW,
    )
    return member


def test_redeeming_cny10_spends_1000_points_and_issues_a_coupon_valid_30_days(store, cny10):
    member = member_with_points(store, 1500)
    result = reward_redeem(member=member, reward=cny10, idempotency_key="k1", now=NOW)
    assert result.redemption.points_spent == 1000
    assert result.coupon.valid_until == NOW + datetime.timedelta(days=30)
    assert len(result.coupon.code) == 16
    assert Account.objects.get(member=member).balance == 500


def test_the_same_redemption_key_twice_issues_one_coupon(store, cny10):
    member = member_with_points(store, 2500)
    first = reward_redeem(member=member, reward=cny10, idempotency_key="k1", now=NOW)
    again = reward_redeem(member=member, reward=cny10, idempotency_key="k1", now=NOW)
    assert again.coupon == first.coupon and not again.created
    assert Coupon.objects.count() == 1


def test_redeeming_without_enough_points_is_refused(store, cny10):
    member = member_with_points(store, 999)
    with pytest.raises(InsufficientPoints):
        reward_redeem(member=member, reward=cny10, idempotency_key="k1", now=NOW)
    assert Coupon.objects.count() == 0


def test_stock_limit_and_tier_rules(store, cny10):
    member = member_with_points(store, 5000)
    cny10.stock = 1
    cny10.per_member_limit = 1
    cny10.save()
    reward_redeem(member=member, reward=cny10, idempotency_key="k1", now=NOW)
    with pytest.raises(LimitReached):
        reward_redeem(member=member, reward=cny10, idempotency_key="k2", now=NOW)
    other = member_with_points(store, 5000, receipt="R2")
    with pytest.raises(OutOfStock):
        reward_redeem(member=other, reward=cny10, idempotency_key="k3", now=NOW)
    cny10.refresh_from_db()
    assert cny10.stock == 0
    gold_only = Reward.objects.create(
        code="GOLD",
        kind=Reward.Kind.GIFT,
        name_zh="礼品",
        name_en="Gift",
        points_price=10,
        min_tier_rank=3,
    )
    with pytest.raises(TierRequired):
        reward_redeem(member=other, reward=gold_only, idempotency_key="k4", now=NOW)
    assert Account.objects.get(member=other).balance == 5000


def test_a_coupon_is_used_once_and_never_after_it_expires(store, cny10):
    member = member_with_points(store, 3000)
    coupon = reward_redeem(member=member, reward=cny10, idempotency_key="k1", now=NOW).coupon
    used = coupon_use(code=coupon.code.lower(), store=store, receipt_no="R9", now=NOW)
    assert used.status == Coupon.Status.USED
    with pytest.raises(CouponUsed):
        coupon_use(code=coupon.code, store=store, now=NOW)

    late = reward_redeem(member=member, reward=cny10, idempotency_key="k2", now=NOW).coupon
    with pytest.raises(CouponExpired):
        coupon_use(code=late.code, store=store, now=NOW + datetime.timedelta(days=30))


def test_voiding_an_unused_redemption_puts_the_points_back_in_their_lots(store, cny10):
    member = member_with_points(store, 1200)
    result = reward_redeem(member=member, reward=cny10, idempotency_key="k1", now=NOW)
    redemption_void(redemption=result.redemption, actor=None, reason="Changed mind", now=NOW)
    assert Account.objects.get(member=member).balance == 1200
    assert Lot.objects.get().remaining == 1200
    result.coupon.refresh_from_db()
    assert result.coupon.status == Coupon.Status.VOID
