"""Members and campaigns for the outbox tests, at fixed times in Asia/Shanghai."""

from __future__ import annotations

import datetime
import itertools
from zoneinfo import ZoneInfo

from campaigns.models import Campaign, OutboxMessage
from tests.factories import MemberFactory, UserFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai(day: int, hour: int, minute: int = 0, *, month: int = 3) -> datetime.datetime:
    return datetime.datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


# A Tuesday afternoon: outside quiet hours.
NOON = shanghai(10, 14)


_numbers = itertools.count(1)


def member(*, sms=True, email=True, login=False, language="zh-hans", **fields):
    """A member reachable on the channels asked for (consent and an address each)."""
    values = {
        "consent_sms": sms,
        "consent_email": email,
        "language": language,
        **fields,
    }
    if email and "email" not in fields:
        values["email"] = f"m{next(_numbers)}@example.com"
    if login:
        values["user"] = UserFactory()
    return MemberFactory(**values)


def campaign(*, sms=False, email=False, portal=False, **fields) -> Campaign:
    values = {
        "name": "春季回馈",
        "kind": Campaign.Kind.MESSAGE,
        "status": Campaign.Status.RUNNING,
        "send_sms": sms,
        "send_email": email,
        "send_portal": portal,
        "message_subject_zh": "春季礼遇",
        "message_subject_en": "Spring treats",
        "message_body_zh": "{name}您好，春季回馈已开始。",
        "message_body_en": "Hello {name}, our spring treats have begun.",
        **fields,
    }
    return Campaign.objects.create(**values)


def past_message(
    member, *, at: datetime.datetime, channel="sms", purpose="marketing", status="sent"
) -> OutboxMessage:
    """A message that went out at `at` (another campaign's, or a service message)."""
    return OutboxMessage.objects.create(
        member=member,
        channel=channel,
        purpose=purpose,
        status=status,
        body="earlier",
        created_at=at,
        send_after=at,
        sent_at=at if status == "sent" else None,
    )


def statuses(campaign: Campaign) -> dict[tuple[int, str], str]:
    return {
        (m.member_id, m.channel): m.status for m in OutboxMessage.objects.filter(campaign=campaign)
    }


class RefusingBackend:
    """A gateway that refuses some numbers (the SMS backend is a setting, so this is a real
    backend, not a mock of one)."""

    refused: set[str] = set()

    def send(self, message) -> None:
        if message.phone in self.refused:
            raise RuntimeError("gateway said no")
        from members import sms

        sms.outbox.append(message)
