"""Service messages that members sends itself are in the outbox too: sent or failed, never
capped, never counted by the cap."""

from __future__ import annotations

import datetime

import pytest

from campaigns.messages import messages_enqueue
from campaigns.models import OutboxMessage
from members.messaging import member_notify, member_welcome_send
from points.jobs import reminders_job
from points.ledger import account_lock, fingerprint, points_credit
from points.models import Account, LedgerTransaction

from .outbox_world import RefusingBackend, campaign, member, shanghai, statuses

pytestmark = pytest.mark.django_db


def test_an_expiry_reminder_is_an_outbox_row_of_the_member(sms_outbox):
    reader = member(sms=True, email=False)
    # Earned in March 2025: these points expire when 2026-04-01 begins.
    points_credit(
        account=account_lock(member=reader),
        points=300,
        kind=LedgerTransaction.Kind.EARN,
        counter_kind=Account.Kind.ISSUANCE,
        key="earn-1",
        request_fingerprint=fingerprint({"k": 1}),
        source="purchase",
        occurred_at=shanghai(5, 12).replace(year=2025),
        now=shanghai(10, 9),
    )

    reminders_job(datetime.date(2026, 3, 10))

    [text] = sms_outbox
    [row] = OutboxMessage.objects.filter(member=reader)
    assert (row.channel, row.purpose, row.status, row.campaign) == ("sms", "service", "sent", None)
    assert row.body == text.text and "300" in row.body and row.sent_at is not None


def test_the_welcome_text_is_recorded_and_a_failed_send_says_why(settings, sms_outbox):
    newcomer = member(sms=False, email=False)
    assert member_welcome_send(member=newcomer) is True
    row = OutboxMessage.objects.get(member=newcomer)
    assert (row.purpose, row.status, row.body) == ("service", "sent", sms_outbox[0].text)

    settings.SMS_BACKEND = "tests.campaigns.outbox_world.RefusingBackend"
    unlucky = member(sms=True, email=False)
    RefusingBackend.refused = {unlucky.phone}
    assert member_notify(member=unlucky, subject="", text="您的等级已更新") == []
    failed = OutboxMessage.objects.get(member=unlucky)
    assert (failed.status, failed.error, failed.sent_at) == (
        "failed",
        "RuntimeError: gateway said no",
        None,
    )


def test_service_messages_do_not_count_towards_the_cap(sms_outbox):
    busy = member(sms=True, email=True)
    for number in range(4):
        member_notify(member=busy, subject="通知", text=f"服务消息 {number}")
    assert OutboxMessage.objects.filter(member=busy, purpose="service").count() == 8
    c = campaign(sms=True, email=True)
    messages_enqueue(campaign=c, member_ids=[busy.pk], now=datetime.datetime.now(tz=datetime.UTC))
    assert set(statuses(c).values()) <= {"pending", "delayed"}
