"""The campaign lifecycle as a marketer and an administrator meet it: what a draft must
have, what launching checks, who approves, what cancelling does, and the audit trail."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from campaigns.models import Campaign
from campaigns.services import (
    CampaignInvalid,
    CampaignNotEditable,
    CampaignStateError,
    campaign_cancel,
    campaign_create,
    campaign_update,
)
from members.models import AuditEntry

from .campaign_pages_support import NOW, bonus_make, marketer, segment_make

pytestmark = pytest.mark.django_db


def test_a_bonus_draft_without_points_is_refused_and_nothing_is_saved():
    user = marketer()
    with pytest.raises(CampaignInvalid) as refused:
        bonus_make(actor=user, segment=segment_make(), bonus_points=0)
    assert list(refused.value.errors) == ["bonus_points"]
    assert not Campaign.objects.exists()


def test_a_promotion_must_end_after_it_starts_and_multiply_by_more_than_one():
    with pytest.raises(CampaignInvalid) as refused:
        campaign_create(
            actor=marketer(),
            name="双倍积分周",
            kind=Campaign.Kind.MULTIPLIER,
            multiplier=Decimal(1),
            starts_at=NOW,
            ends_at=NOW - datetime.timedelta(hours=1),
        )
    assert set(refused.value.errors) == {"multiplier", "ends_at"}
    assert not Campaign.objects.exists()


def test_a_draft_is_created_by_its_builder_with_its_stores():
    from tests.factories import StoreFactory

    user = marketer()
    shop = StoreFactory(code="SH009")
    campaign = campaign_create(
        actor=user,
        name="双倍积分周",
        kind=Campaign.Kind.MULTIPLIER,
        multiplier=Decimal(2),
        starts_at=NOW,
        ends_at=NOW + datetime.timedelta(days=7),
        tiers=["gold"],
        stores=[shop],
    )
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.created_by == user
    assert list(campaign.stores.all()) == [shop]
    assert campaign.segment is None  # a promotion may be for tiers instead


def test_only_a_draft_can_be_changed():
    user = marketer()
    campaign = bonus_make(actor=user, segment=segment_make())
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    with pytest.raises(CampaignNotEditable):
        campaign_update(campaign=campaign, actor=user, bonus_points=500)
    campaign.refresh_from_db()
    assert campaign.bonus_points == 100


def test_changing_a_draft_that_waits_for_approval_withdraws_the_request():
    user = marketer()
    campaign = bonus_make(actor=user, segment=segment_make())
    Campaign.objects.filter(pk=campaign.pk).update(approval_required=True, scheduled_at=NOW)
    campaign = campaign_update(campaign=campaign, actor=user, bonus_points=5000)
    assert campaign.bonus_points == 5000
    assert campaign.approval_required is False
    assert campaign.scheduled_at is None


@pytest.mark.parametrize("status", ["draft", "scheduled", "running"])
def test_a_campaign_not_yet_finished_can_be_cancelled_and_the_audit_log_says_who(status):
    user = marketer()
    campaign = bonus_make(actor=user, segment=segment_make())
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign = campaign_cancel(campaign=campaign, actor=user, now=NOW)
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.cancelled_at == NOW
    entry = AuditEntry.objects.get(action="campaign.cancel")
    assert entry.actor == user
    assert entry.target_id == str(campaign.pk)
    assert entry.details["was"] == status


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_a_finished_campaign_cannot_be_cancelled(status):
    user = marketer()
    campaign = bonus_make(actor=user, segment=segment_make())
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    with pytest.raises(CampaignStateError):
        campaign_cancel(campaign=campaign, actor=user, now=NOW)
    assert not AuditEntry.objects.filter(action="campaign.cancel").exists()


def test_a_promotion_takes_a_segment_or_tiers_not_both():
    from campaigns.models import Segment

    segment = Segment.objects.create(
        name="上海",
        rules={
            "version": 1,
            "rule": {"group": "and", "rules": [{"field": "city", "op": "eq", "value": "上海"}]},
        },
    )
    with pytest.raises(CampaignInvalid) as refused:
        campaign_create(
            actor=marketer(),
            name="金卡双倍",
            kind=Campaign.Kind.MULTIPLIER,
            multiplier=Decimal(2),
            starts_at=NOW,
            ends_at=NOW + datetime.timedelta(days=7),
            segment=segment,
            tiers=["gold"],
        )
    assert set(refused.value.errors) == {"tiers"}
    assert not Campaign.objects.exists()
