"""Merging duplicate members: nothing is lost, every point keeps its expiry."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.models import AuditEntry, Member
from members.selectors import member_duplicate_groups
from points.jobs import reconcile_job
from points.models import Account, Coupon, Lot, Purchase, Reward
from points.services import MergeRefused, member_merge, purchase_record, reward_redeem
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 6, 1, 12, tzinfo=SH)


def buy(member, store, receipt, amount, when):
    purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=when,
        amount=Decimal(amount),
        now=when,
    )


def test_name_and_birthday_twins_are_offered_as_duplicates():
    a = MemberFactory(name="王伟", birthday=datetime.date(1988, 8, 8))
    b = MemberFactory(name="王伟", birthday=datetime.date(1988, 8, 8))
    MemberFactory(name="王伟", birthday=datetime.date(1990, 1, 1))
    groups = member_duplicate_groups()
    assert [(g.reason, {m.pk for m in g.members}) for g in groups] == [
        ("name_birthday", {a.pk, b.pk})
    ]


def test_merging_moves_points_purchases_and_coupons_and_keeps_expiry(store, role_user):
    admin = role_user("administrator")
    reward = Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="券",
        name_en="Coupon",
        points_price=100,
        amount_off=10,
    )
    source = MemberFactory(email="old@example.com", user=UserFactory(phone=None))
    target = MemberFactory()
    buy(source, store, "S1", 300, datetime.datetime(2025, 7, 10, 12, tzinfo=SH))
    buy(target, store, "T1", 500, datetime.datetime(2026, 2, 10, 12, tzinfo=SH))
    reward_redeem(member=source, reward=reward, idempotency_key="k", now=NOW)

    member_merge(source=source, target=target, actor=admin, now=NOW)

    source.refresh_from_db()
    target.refresh_from_db()
    assert source.status == Member.Status.MERGED and source.merged_into == target
    assert (source.phone, source.email, source.user) == (None, None, None)
    assert target.email == "old@example.com"
    assert target.user is not None
    assert Account.objects.get(member=source).balance == 0
    assert Account.objects.get(member=target).balance == 500 + 200
    moved_lot = Lot.objects.get(account__member=target, points=200)
    assert moved_lot.expires_at == datetime.datetime(2026, 8, 1, tzinfo=SH)
    assert Purchase.objects.filter(member=target).count() == 2
    assert Coupon.objects.get().member == target
    assert AuditEntry.objects.filter(action="member.merge").count() == 2
    _, details = reconcile_job(NOW.date())
    assert "failed" not in details


def test_a_merged_member_cannot_be_merged_again_nor_into_itself(store, role_user):
    admin = role_user("administrator")
    a, b = MemberFactory(), MemberFactory()
    with pytest.raises(MergeRefused):
        member_merge(source=a, target=a, actor=admin)
    member_merge(source=a, target=b, actor=admin)
    with pytest.raises(MergeRefused):
        member_merge(source=a, target=b, actor=admin)


def test_finding_duplicates_takes_the_same_queries_however_many_groups(
    django_assert_max_num_queries,
):
    for i in range(6):
        for _ in range(2):
            MemberFactory(name=f"张{i}", birthday=datetime.date(1990, 1, 1 + i))
    with django_assert_max_num_queries(3):
        groups = member_duplicate_groups()
    assert len(groups) == 6 and all(len(g.members) == 2 for g in groups)
