"""Reads for the campaign pages: the list a back-office user may see, and one campaign.

Marketers, administrators and auditors (campaigns.view_campaign) see every campaign. Store
staff and managers (campaigns.view_campaign_results only) see the launched campaigns whose
frozen audience holds members of their stores, and only their results.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from members.selectors import staff_store_ids

from .models import Campaign, CampaignMember

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
