"""Celery tasks of campaigns: thin wrappers that take ids and call one service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from .launch import CampaignNotLaunchable, campaign_start, campaigns_tick
from .models import Campaign

logger = logging.getLogger(__name__)


@shared_task
def campaigns_tick_task() -> dict:
    """Beat, every minute: launch and send due campaigns, dispatch the outbox."""
    # Safe to run twice and after a kill: launching is idempotent, each sent batch is
    # committed with its members marked done, and one tick runs at a time.
    return campaigns_tick(now=timezone.now())


@shared_task
def campaign_start_task(campaign_id: int) -> None:
    """The "launch now" button: launch the campaign (if not launched) and send it."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return
    try:
        campaign_start(campaign=campaign, now=timezone.now())
    except CampaignNotLaunchable:
        # Cancelled, or waiting for approval, since the button was pressed: the tick
        # launches it if it ever becomes due.
        logger.info("campaign %s not started: not launchable", campaign_id)
