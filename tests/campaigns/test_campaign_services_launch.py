"""Launching, approval and the win-back draft, on a small population whose answers are known:
ten regular members, four of whom agreed to marketing SMS."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import translation

from campaigns.models import Campaign, Segment
from campaigns.services import (
    ApprovalRefused,
    CampaignInvalid,
    CampaignStateError,
    campaign_approve,
    campaign_create,
    campaign_schedule,
    campaign_update,
    campaign_winback_create,
)
from members.models import AuditEntry
from tests.factories import MemberFactory

from .campaign_pages_support import NOW, administrator, bonus_make, marketer, segment_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def members():
    return [MemberFactory(consent_sms=i < 4) for i in range(10)]


def test_launching_now_schedules_it_now_logs_it_and_starts_it_after_commit(
    members, django_capture_on_commit_callbacks
):
    user = marketer()
    campaign = bonus_make(actor=user, segment=segment_make(), send_sms=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign = campaign_schedule(campaign=campaign, actor=user, at=None, now=NOW)
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at == NOW
    assert campaign.salt  # the holdout's draw is fixed from now on
    assert len(callbacks) == 1  # campaign_start_task, once the row is committed
    entry = AuditEntry.objects.get(action="campaign.launch")
    assert entry.actor == user
    # 10 members, 10% holdout: 9 treated × 100 points = 900 points, ¥9 at ¥0.01;
    # 4 with SMS consent, 9/10 of them expected treated: round(3.6) = 4 SMS.
    assert entry.details["treated"] == 9
    assert entry.details["points"] == 900
    assert entry.details["points_cost"] == "9.00"
    assert entry.details["sms"] == 4
    assert entry.details["waiting_for_approval"] is False


def test_launching_later_schedules_it_for_then_and_starts_nothing_yet(
    members, django_capture_on_commit_callbacks
):
    user = marketer()
    campaign = bonus_make(actor=user, segment=segment_make())
    later = NOW + datetime.timedelta(days=2)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign = campaign_schedule(campaign=campaign, actor=user, at=later, now=NOW)
    assert (campaign.status, campaign.scheduled_at) == (Campaign.Status.SCHEDULED, later)
    assert callbacks == []


def test_every_launch_problem_is_reported_at_once_and_nothing_changes(members):
    user = marketer()
    campaign = campaign_create(
        actor=user, name="提醒", kind=Campaign.Kind.MESSAGE, message_body_zh="您好 {nickname}"
    )
    with pytest.raises(CampaignInvalid) as refused:
        campaign_schedule(
            campaign=campaign, actor=user, at=NOW - datetime.timedelta(minutes=1), now=NOW
        )
    assert set(refused.value.errors) == {"segment", "send_sms", "message_body_zh", "scheduled_at"}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT and campaign.scheduled_at is None
    assert not AuditEntry.objects.filter(action="campaign.launch").exists()


def test_an_email_needs_a_subject_in_each_language_it_is_written_in(members):
    user = marketer()
    campaign = bonus_make(
        actor=user, segment=segment_make(), send_email=True, message_subject_zh="春季回馈"
    )
    with translation.override("en"), pytest.raises(CampaignInvalid) as refused:
        campaign_schedule(campaign=campaign, actor=user, at=None, now=NOW)
    assert refused.value.errors == {"message_subject_en": ["An e-mail needs a subject."]}


def test_a_multiplier_promotion_may_be_for_tiers_without_a_segment(members):
    user = marketer()
    campaign = campaign_create(
        actor=user,
        name="双倍积分周",
        kind=Campaign.Kind.MULTIPLIER,
        multiplier=Decimal(2),
        starts_at=NOW,
        ends_at=NOW + datetime.timedelta(days=7),
        tiers=["regular"],
    )
    campaign = campaign_schedule(campaign=campaign, actor=user, at=None, now=NOW)
    assert campaign.status == Campaign.Status.SCHEDULED


def test_a_coupon_campaign_needs_an_active_reward(members):
    from points.models import Reward

    reward = Reward.objects.create(
        code="C10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal(10),
        is_active=False,
    )
    user = marketer()
    campaign = campaign_create(
        actor=user, name="送券", kind=Campaign.Kind.COUPON, segment=segment_make(), reward=reward
    )
    with pytest.raises(CampaignInvalid) as refused:
        campaign_schedule(campaign=campaign, actor=user, at=None, now=NOW)
    assert list(refused.value.errors) == ["reward"]


@override_settings(CAMPAIGN_APPROVAL_COST=Decimal(8))
def test_a_costly_campaign_waits_for_another_administrator(
    members, django_capture_on_commit_callbacks
):
    # 9 treated × 100 points × ¥0.01 = ¥9, above the ¥8 limit.
    builder = administrator()
    campaign = bonus_make(actor=builder, segment=segment_make())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign = campaign_schedule(campaign=campaign, actor=builder, at=None, now=NOW)
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.approval_required is True
    assert callbacks == []
    assert AuditEntry.objects.get(action="campaign.launch").details["waiting_for_approval"]
    with pytest.raises(CampaignStateError):
        campaign_schedule(campaign=campaign, actor=builder, at=None, now=NOW)  # asked once

    with pytest.raises(ApprovalRefused):
        campaign_approve(campaign=campaign, actor=builder, now=NOW)  # their own
    with pytest.raises(ApprovalRefused):
        campaign_approve(campaign=campaign, actor=marketer(), now=NOW)  # not an administrator
    approver = administrator()
    later = NOW + datetime.timedelta(minutes=30)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign = campaign_approve(campaign=campaign, actor=approver, now=later)
    # Asked for "now", approved half an hour later: it starts when approved.
    assert campaign.status == Campaign.Status.SCHEDULED
    assert (campaign.scheduled_at, campaign.approved_at) == (later, later)
    assert campaign.approved_by == approver
    assert len(callbacks) == 1
    assert AuditEntry.objects.get(action="campaign.approve").actor == approver
    with pytest.raises(CampaignStateError):
        campaign_approve(campaign=campaign, actor=administrator(), now=later)


@override_settings(CAMPAIGN_APPROVAL_COST=Decimal(9))
def test_a_cost_at_the_limit_needs_no_approval(members):
    user = marketer()
    campaign = bonus_make(actor=user, segment=segment_make())
    campaign = campaign_schedule(campaign=campaign, actor=user, at=None, now=NOW)
    assert campaign.status == Campaign.Status.SCHEDULED


@override_settings(CAMPAIGN_APPROVAL_COST=Decimal(8))
def test_a_draft_changed_while_waiting_must_be_launched_again(members):
    user = marketer()
    campaign = bonus_make(actor=user, segment=segment_make())
    campaign = campaign_schedule(campaign=campaign, actor=user, at=None, now=NOW)
    campaign = campaign_update(campaign=campaign, actor=user, bonus_points=10_000)
    with pytest.raises(CampaignStateError):
        campaign_approve(campaign=campaign, actor=administrator(), now=NOW)


def test_a_campaign_is_launched_once(members):
    user = marketer()
    campaign = bonus_make(actor=user, segment=segment_make())
    campaign_schedule(campaign=campaign, actor=user, at=None, now=NOW)
    with pytest.raises(CampaignStateError):
        campaign_schedule(campaign=campaign, actor=user, at=None, now=NOW)
    assert AuditEntry.objects.filter(action="campaign.launch").count() == 1


def test_the_win_back_draft_targets_the_high_risk_members_of_the_alerts_store_and_tier():
    from tests.factories import StoreFactory
    from tiers.models import TierLevel

    shop = StoreFactory(code="SH001", name="上海南京路店")
    gold = TierLevel.objects.get(code="gold")
    user = marketer()
    campaign = campaign_winback_create(actor=user, store=shop, tier=gold, now=NOW)
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.kind == Campaign.Kind.MESSAGE
    assert campaign.created_by == user
    segment = Segment.objects.get()
    assert campaign.segment == segment
    assert segment.rules["rule"]["rules"] == [
        {"field": "churn_band", "op": "in", "value": ["high"]},
        {"field": "home_store", "op": "in", "value": [shop.pk]},
        {"field": "tier", "op": "in", "value": ["gold"]},
    ]
    assert "上海南京路店" in campaign.name


def test_cancelling_a_running_promotion_stops_it_applying_to_the_next_purchase(
    time_machine, django_capture_on_commit_callbacks
):
    from zoneinfo import ZoneInfo

    from campaigns.launch import campaign_launch
    from campaigns.services import campaign_cancel
    from points.services import purchase_record
    from tests.factories import StoreFactory

    shanghai = ZoneInfo("Asia/Shanghai")
    now = datetime.datetime(2026, 5, 12, 14, 0, tzinfo=shanghai)
    time_machine.move_to(now, tick=False)
    shop = StoreFactory(code="SH001")
    member = MemberFactory()
    user = marketer()
    campaign = campaign_create(
        actor=user,
        name="双倍积分周",
        kind=Campaign.Kind.MULTIPLIER,
        multiplier=Decimal(2),
        starts_at=now - datetime.timedelta(days=1),
        ends_at=now + datetime.timedelta(days=6),
        holdout_percent=Decimal(0),
    )
    campaign = campaign_schedule(campaign=campaign, actor=user, at=now, now=now)
    campaign_launch(campaign=campaign, now=now)

    def earned(receipt: str) -> int:
        return purchase_record(
            member=member,
            store=shop,
            receipt_no=receipt,
            occurred_at=now,
            amount=Decimal(100),
            now=now,
        ).purchase.points_earned

    assert earned("R1") == 200  # ¥100 at 1 point per ¥1, doubled
    with django_capture_on_commit_callbacks(execute=True):
        campaign_cancel(campaign=campaign, actor=user, now=now)
    assert earned("R2") == 100


def test_a_segment_whose_rules_no_longer_hold_refuses_the_launch_on_the_segment(members):
    user = marketer()
    broken = segment_make(
        "失效人群",
        rules={
            "version": 1,
            "rule": {"group": "and", "rules": [{"field": "no_such_field", "op": "eq", "value": 1}]},
        },
    )
    campaign = bonus_make(actor=user, segment=broken)
    with pytest.raises(CampaignInvalid) as refused:
        campaign_schedule(campaign=campaign, actor=user, at=None, now=NOW)
    assert list(refused.value.errors) == ["segment"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


@override_settings(CAMPAIGN_APPROVAL_COST=Decimal(9))
def test_a_bonus_whose_segment_grew_past_the_approval_limit_waits_for_an_administrator(members):
    from campaigns.launch import CampaignNotLaunchable, campaign_launch
    from campaigns.models import CampaignMember

    user = marketer()
    segment = segment_make()
    campaign = bonus_make(actor=user, segment=segment)
    later = NOW + datetime.timedelta(days=2)
    # 10 members, 9 treated × 100 points = ¥9: within the limit when scheduled.
    campaign = campaign_schedule(campaign=campaign, actor=user, at=later, now=NOW)
    assert campaign.status == Campaign.Status.SCHEDULED
    # Before it starts, the segment's rules are widened to everyone, 20 members.
    MemberFactory.create_batch(10)
    segment.rules = {
        "version": 1,
        "rule": {
            "group": "and",
            "rules": [{"field": "tier", "op": "in", "value": ["regular", "silver", "gold"]}],
        },
    }
    segment.save()

    with pytest.raises(CampaignNotLaunchable):
        campaign_launch(campaign=campaign, now=later)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.approval_required) == (Campaign.Status.DRAFT, True)
    assert campaign.launched_at is None
    assert not CampaignMember.objects.filter(campaign=campaign).exists()
    entry = AuditEntry.objects.get(action="campaign.approval_needed")
    assert entry.details["treated"] > 9
