"""The message outbox: every message to a member, marketing or service, with its status.

The rules (ANALYTICS.md, Messages): consent per channel is a hard gate; quiet hours delay,
never drop; the frequency cap counts marketing messages in a rolling window and drops what
is over; service messages are exempt from the cap.
"""

from __future__ import annotations

import datetime

from django.conf import settings

from .models import OutboxMessage

# The messages that count towards the frequency cap: marketing pushed to a phone or an inbox
# (in-portal notices interrupt nobody), that went or will go out.
CAP_CHANNELS = (OutboxMessage.Channel.SMS, OutboxMessage.Channel.EMAIL)
CAP_STATUSES = (
    OutboxMessage.Status.PENDING,
    OutboxMessage.Status.DELAYED,
    OutboxMessage.Status.SENDING,
    OutboxMessage.Status.SENT,
)


def frequency_window_start(*, at: datetime.datetime) -> datetime.datetime:
    return at - datetime.timedelta(days=settings.MESSAGE_FREQUENCY_DAYS)


def capped_members_sql(*, at: datetime.datetime) -> tuple[str, list]:
    """SQL of the member ids (column `member_id`) who already have MESSAGE_FREQUENCY_CAP or
    more marketing messages counting towards the cap in the window ending at `at`: another
    marketing message to them now would be capped. The one home of the cap's count."""
    table = OutboxMessage._meta.db_table
    channels = ", ".join(["%s"] * len(CAP_CHANNELS))
    statuses = ", ".join(["%s"] * len(CAP_STATUSES))
    sql = (
        f"SELECT member_id FROM {table} "  # noqa: S608 - our own table name
        f"WHERE purpose = %s AND channel IN ({channels}) AND status IN ({statuses}) "
        "AND send_after > %s AND send_after <= %s "
        "GROUP BY member_id HAVING COUNT(*) >= %s"
    )
    params = [
        OutboxMessage.Purpose.MARKETING,
        *CAP_CHANNELS,
        *CAP_STATUSES,
        frequency_window_start(at=at),
        at,
        settings.MESSAGE_FREQUENCY_CAP,
    ]
    return sql, params


def register() -> None:
    """Called from `CampaignsConfig.ready()`: the outbox's panels and hooks."""
