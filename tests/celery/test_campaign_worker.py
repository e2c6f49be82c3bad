"""A campaign sent by a real Celery worker that is killed half-way and starts again sends
nothing twice.

Needs PostgreSQL (the worker reads the committed test database) and Redis (the broker).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignMember, OutboxMessage
from campaigns.tasks import campaign_start_task
from devtools.loadgen import loadgen
from members.models import Member
from points.jobs import reconcile_job
from points.models import Account, LedgerTransaction

from .conftest import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

TIMEOUT = 90.0


def test_a_worker_killed_mid_send_posts_and_messages_each_member_once_when_it_starts_again(
    celery_worker,
):
    # One member per batch: the send takes long enough to be caught half-way. No quiet
    # hours (start = end), so the messages go out whatever the time the test runs.
    worker = celery_worker(
        CAMPAIGN_BATCH_SIZE="1", MESSAGE_QUIET_START_HOUR="0", MESSAGE_QUIET_END_HOUR="0"
    )
    loadgen(members=400, purchases=0, seed=5, append=True)
    Member.objects.update(consent_sms=True)
    before = dict(Account.objects.filter(kind="member").values_list("member_id", "balance"))
    campaign = Campaign.objects.create(
        name="会员日加赠",
        kind=Campaign.Kind.BONUS,
        bonus_points=150,
        status=Campaign.Status.SCHEDULED,
        scheduled_at=timezone.now(),
        holdout_percent=Decimal(10),
        send_sms=True,
        message_body_zh="{name}您好，150积分已到账。",
    )

    worker.wait_ready()
    campaign_start_task.apply_async(args=[campaign.pk], queue=worker.queue)

    def half_way() -> int:
        return CampaignMember.objects.filter(campaign=campaign, done_at__isnull=False).count()

    wait_for(half_way, timeout=TIMEOUT, what="the send to start", worker=worker)
    (child,) = worker.pool_children()
    os.kill(child, signal.SIGKILL)
    campaign.refresh_from_db()
    treated = campaign.audience_size - campaign.control_size
    killed_at = half_way()
    assert 0 < killed_at < treated, "killed too late to test anything"

    # acks_late + reject_on_worker_lost: the task goes to the new pool process, which finds
    # the campaign launched and sends to the members not done.
    def completed() -> bool:
        return Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.COMPLETED).exists()

    wait_for(completed, timeout=TIMEOUT, what="the send after the kill", worker=worker)

    audience = CampaignMember.objects.filter(campaign=campaign)
    assert audience.count() == campaign.audience_size  # drawn once, at the first launch
    treated_ids = set(audience.filter(arm="treatment").values_list("member_id", flat=True))
    control_ids = set(audience.filter(arm="control").values_list("member_id", flat=True))
    posted = Counter(
        LedgerTransaction.objects.filter(source="campaign").values_list("member_id", flat=True)
    )
    # Each treated member exactly once; the holdout never.
    assert posted == dict.fromkeys(treated_ids, 1)
    assert not posted.keys() & control_ids
    after = dict(Account.objects.filter(kind="member").values_list("member_id", "balance"))
    gained = {m: after.get(m, 0) - before.get(m, 0) for m in treated_ids | control_ids}
    assert gained == {m: 150 if m in treated_ids else 0 for m in gained}
    assert not audience.filter(arm="treatment", done_at__isnull=True).exists()
    # One SMS per treated member, sent once, after the send (campaign_start dispatches).
    outbox = OutboxMessage.objects.filter(campaign=campaign)
    assert sorted(outbox.values_list("member_id", flat=True)) == sorted(treated_ids)
    wait_for(
        lambda: not outbox.exclude(status="sent").exists(),
        timeout=TIMEOUT,
        what="the messages to go out",
        worker=worker,
    )
    assert worker.log().count("[SMS to ") == len(treated_ids)
    _checked, details = reconcile_job(timezone.localdate())
    assert "failed" not in details, details
