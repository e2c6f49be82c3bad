"""Reads for the campaign pages: the list a back-office user may see, and one campaign.

Marketers, administrators and auditors (campaigns.view_campaign) see every campaign. Store
staff and managers (campaigns.view_campaign_results only) see the launched campaigns whose
frozen audience holds members of their stores, and only their results.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from members.selectors import staff_store_ids
from tiers.selectors import tier_levels

from .models import Campaign, CampaignMember, OutboxMessage
from .results import (
    CostEstimate,
    campaign_cost_estimate,
    campaign_needs_approval,
    segment_baseline_rate,
)
from .segments import SegmentFunnel, segment_funnel, segment_members_sql
from .stats import minimum_detectable_effect

VIEW_PERMISSION = "campaigns.view_campaign"
RESULTS_PERMISSION = "campaigns.view_campaign_results"
MANAGE_PERMISSION = "campaigns.manage_segment"


def campaign_reader_sees_all(*, user: Any) -> bool:
    return user.has_perm(VIEW_PERMISSION)


def campaign_list(*, user: Any, status: str = "") -> QuerySet[Campaign]:
    campaigns = Campaign.objects.select_related("segment").order_by("-created_at", "-id")
    if status:
        campaigns = campaigns.filter(status=status)
    if campaign_reader_sees_all(user=user):
        return campaigns
    if not user.has_perm(RESULTS_PERMISSION):
        return campaigns.none()
    campaigns = campaigns.filter(launched_at__isnull=False)
    store_ids = staff_store_ids(user=user)
    if store_ids is None:
        return campaigns
    touched = CampaignMember.objects.filter(
        campaign=OuterRef("pk"), member__home_store_id__in=store_ids
    )
    return campaigns.filter(Exists(touched))


def campaign_get(*, user: Any, campaign_id: int) -> Campaign | None:
    """The campaign if this user may see it (else None, as if it did not exist)."""
    return campaign_list(user=user).filter(pk=campaign_id).first()


# --- Before launch -------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignPreview:
    """What the campaign page shows before launch, and what launching decides on."""

    funnel: SegmentFunnel
    # Expected arms: the matching members split by the holdout share.
    treated: int
    control: int
    estimate: CostEstimate
    needs_approval: bool
    # The audience's recent conversion rate and the smallest uplift the holdout can detect.
    baseline_rate: float | None
    minimum_uplift: float | None


def campaign_audience_rules(*, campaign: Campaign) -> dict:
    """The audience as segment rules: the segment's, else (a multiplier promotion) its
    tiers, else every tier — so the funnel and the estimate read one compiled query."""
    if campaign.segment_id is not None:
        return campaign.segment.rules
    if campaign.tiers:
        condition = {"field": "tier", "op": "in", "value": list(campaign.tiers)}
    else:
        condition = {"field": "tier", "op": "ge", "value": tier_levels()[0].code}
    return {"version": 1, "rule": {"group": "and", "rules": [condition]}}


def campaign_channels(*, campaign: Campaign) -> list[str]:
    return [
        channel
        for channel, on in (
            (OutboxMessage.Channel.SMS, campaign.send_sms),
            (OutboxMessage.Channel.EMAIL, campaign.send_email),
            (OutboxMessage.Channel.PORTAL, campaign.send_portal),
        )
        if on
    ]


def _treated(count: int, holdout_percent: Decimal) -> int:
    share = Decimal(1) - Decimal(holdout_percent) / 100
    return int((count * share).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def campaign_preview(*, campaign: Campaign, now: datetime.datetime) -> CampaignPreview:
    rules = campaign_audience_rules(campaign=campaign)
    funnel = segment_funnel(
        rules=rules,
        at=now,
        holdout_percent=campaign.holdout_percent,
        channels=campaign_channels(campaign=campaign),
    )
    treated = _treated(funnel.matching, campaign.holdout_percent)
    members_sql = segment_members_sql(rules=rules, at=now)
    estimate = campaign_cost_estimate(
        campaign=campaign,
        treated=treated,
        sms=_treated(funnel.reachable_sms, campaign.holdout_percent) if campaign.send_sms else 0,
        emails=(
            _treated(funnel.reachable_email, campaign.holdout_percent) if campaign.send_email else 0
        ),
        member_ids_sql=members_sql,
    )
    baseline = segment_baseline_rate(
        member_ids_sql=members_sql, at=now, window_days=campaign.conversion_window_days
    )
    return CampaignPreview(
        funnel=funnel,
        treated=treated,
        control=funnel.matching - treated,
        estimate=estimate,
        needs_approval=campaign_needs_approval(estimate=estimate),
        baseline_rate=baseline,
        minimum_uplift=minimum_detectable_effect(
            baseline_rate=baseline, n_treatment=treated, n_control=funnel.matching - treated
        ),
    )
