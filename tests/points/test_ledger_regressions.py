"""Worked examples for ledger bugs found by the stateful test (test_ledger_stateful.py)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from points.jobs import reconcile_job
from points.models import Account, LedgerTransaction, Lot, Reward
from points.services import (
    points_expire,
    purchase_record,
    return_record,
    reward_redeem,
)
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
JANUARY = datetime.datetime(2026, 1, 10, 10, 0, tzinfo=SH)
AFTER_EXPIRY = datetime.datetime(2027, 2, 2, 9, 0, tzinfo=SH)  # January's points expired 1 Feb


def buy(member, store, receipt, amount, *, when=JANUARY, points_to_use=0):
    return purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=when,
        amount=Decimal(amount),
        points_to_use=points_to_use,
        now=when,
    ).purchase


def give_back(store, receipt, original, amount, *, when=AFTER_EXPIRY):
    return return_record(
        store=store,
        receipt_no=receipt,
        original_receipt_no=original,
        amount=Decimal(amount),
        occurred_at=when,
        now=when,
    ).purchase_return


def test_returning_a_purchase_whose_points_expired_does_not_take_them_a_second_time(store):
    # Before the fix: earned 100, lost 100 to expiry, then the return reversed another 100 —
    # balance −100 (debt) although the member never spent a point.
    member = MemberFactory(birthday=None)
    buy(member, store, "R1", "100")
    assert points_expire(at=AFTER_EXPIRY) == 1

    returned = give_back(store, "X1", "R1", "100")

    assert returned.points_reversed == 0
    account = Account.objects.get(member=member)
    assert (account.balance, account.debt, account.lifetime_earned) == (0, 0, 100)
    assert not LedgerTransaction.objects.filter(kind="reverse").exists()


def test_a_return_after_expiry_leaves_the_members_other_points_alone(store):
    member = MemberFactory(birthday=None)
    buy(member, store, "R1", "100")  # expires 1 Feb 2027
    buy(member, store, "R2", "300", when=JANUARY + datetime.timedelta(days=60))  # 1 Apr 2027
    points_expire(at=AFTER_EXPIRY)

    give_back(store, "X1", "R1", "100")

    assert Account.objects.get(member=member).balance == 300


def test_only_the_spent_part_of_expired_purchase_points_can_go_negative(store):
    member = MemberFactory(birthday=None)
    buy(member, store, "R1", "100")
    pen = Reward.objects.create(
        code="PEN", kind=Reward.Kind.GIFT, name_zh="笔", name_en="Pen", points_price=60
    )
    reward_redeem(member=member, reward=pen, idempotency_key="k1", now=JANUARY)
    points_expire(at=AFTER_EXPIRY)  # the 40 left expire

    # Half the goods back reverses half the points, 50, all spent; the other half can take
    # back only the 10 spent points left, not the 40 that expired.
    first = give_back(store, "X1", "R1", "50")
    second = give_back(store, "X2", "R1", "50")

    assert (first.points_reversed, second.points_reversed) == (50, 10)
    account = Account.objects.get(member=member)
    assert (account.balance, account.debt, account.lifetime_earned) == (-60, 60, 40)


def test_voiding_a_redemption_after_a_merge_refunds_the_kept_member_and_reconciles(
    store, role_user
):
    import datetime as dt
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from points.jobs import reconcile_job
    from points.models import Account, Reward
    from points.services import member_merge, purchase_record, redemption_void, reward_redeem
    from tests.factories import MemberFactory

    now = dt.datetime(2026, 6, 1, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
    admin = role_user("administrator")
    reward = Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="券",
        name_en="Coupon",
        points_price=100,
        amount_off=10,
    )
    source, target = MemberFactory(), MemberFactory()
    purchase_record(
        member=source, store=store, receipt_no="R1", occurred_at=now, amount=Decimal(300), now=now
    )
    redemption = reward_redeem(
        member=source, reward=reward, idempotency_key="k", now=now
    ).redemption
    member_merge(source=source, target=target, actor=admin, now=now)

    redemption_void(redemption=redemption, actor=admin, reason="mistake", now=now)

    assert Account.objects.get(member=target).balance == 300
    assert Account.objects.get(member=source).balance == 0
    _, details = reconcile_job(now.date())
    assert "failed" not in details, details


def test_an_expired_coupon_cannot_be_voided_for_a_refund(store, role_user):
    import datetime as dt
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from points.models import Account, Reward
    from points.services import CouponExpired, purchase_record, redemption_void, reward_redeem
    from tests.factories import MemberFactory

    now = dt.datetime(2026, 6, 1, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
    reward = Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="券",
        name_en="Coupon",
        points_price=100,
        amount_off=10,
    )
    member = MemberFactory()
    purchase_record(
        member=member, store=store, receipt_no="R1", occurred_at=now, amount=Decimal(300), now=now
    )
    redemption = reward_redeem(
        member=member, reward=reward, idempotency_key="k", now=now
    ).redemption
    with pytest.raises(CouponExpired):
        redemption_void(
            redemption=redemption,
            actor=role_user("store_manager"),
            reason="late",
            now=now + dt.timedelta(days=31),
        )
    assert Account.objects.get(member=member).balance == 200


def test_a_purchase_recorded_after_its_points_expired_never_counts_in_the_balance(store, settings):
    # Recorded (`now`) in February 2027 for a January 2026 sale, with the window set wider
    # than a year: the points are earned and expire at once, in the same transaction.
    settings.POINTS_PURCHASE_MAX_DAYS_BACK = 400
    member = MemberFactory(birthday=None)

    purchase = purchase_record(
        member=member,
        store=store,
        receipt_no="OLD",
        occurred_at=JANUARY,
        amount=Decimal("100"),
        now=AFTER_EXPIRY,
    ).purchase

    assert purchase.points_earned == 100
    account = Account.objects.get(member=member)
    assert (account.balance, account.debt, account.lifetime_earned) == (0, 0, 100)
    assert list(Lot.objects.filter(account=account).values_list("points", "remaining")) == [
        (100, 0)
    ]
    expiry = LedgerTransaction.objects.get(member=member, kind="expire")
    assert (expiry.member_amount, expiry.occurred_at) == (
        -100,
        datetime.datetime(2027, 2, 1, tzinfo=SH),
    )
    assert "failed" not in reconcile_job(AFTER_EXPIRY.date())[1]
    assert points_expire(at=AFTER_EXPIRY) == 0  # nothing left for the nightly job
    # Its return takes back nothing: the points are gone already.
    assert give_back(store, "X1", "OLD", "100").points_reversed == 0


def test_a_late_earning_pays_the_debt_first_and_only_the_rest_expires(store, settings):
    settings.POINTS_PURCHASE_MAX_DAYS_BACK = 400
    member = MemberFactory(birthday=None)
    buy(member, store, "R1", "100", when=AFTER_EXPIRY)
    buy(member, store, "R2", "1", when=AFTER_EXPIRY, points_to_use=100)
    give_back(store, "X1", "R1", "100")  # the 100 were spent: debt 100
    account = Account.objects.get(member=member)
    assert (account.balance, account.debt) == (-100, 100)

    purchase_record(
        member=member,
        store=store,
        receipt_no="OLD",
        occurred_at=JANUARY,
        amount=Decimal("150"),
        now=AFTER_EXPIRY,
    )

    account.refresh_from_db()
    assert (account.balance, account.debt) == (0, 0)
    assert LedgerTransaction.objects.get(member=member, kind="expire").member_amount == -50
    assert "failed" not in reconcile_job(AFTER_EXPIRY.date())[1]
