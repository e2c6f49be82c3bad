"""The message outbox: every message to a member, marketing or service, with its status.

The rules (ANALYTICS.md, Messages): consent per channel is a hard gate; quiet hours delay,
never drop; the frequency cap counts marketing messages in a rolling window and drops what
is over; service messages are exempt from the cap. Marketing SMS end with the opt-out line,
marketing e-mails carry a one-click unsubscribe link.

A message's status is decided when it is enqueued (`messages_enqueue`, set-based, one row
per member and channel); `outbox_dispatch` then sends what is due, claiming rows first so a
worker killed mid-send never sends a message twice (the claimed rows it left are failed).
"""

from __future__ import annotations

import datetime
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import mail, signing
from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.bulk import InsertLayout, int_array, text_array
from members.models import ConsentEvent, Member
from members.services import member_set_consent
from members.sms import SmsMessage
from points.models import Account, Lot
from tiers.models import MemberTier, TierLevel

from .models import Campaign, OutboxMessage

BUSINESS_TZ = ZoneInfo(settings.TIME_ZONE)
Channel = OutboxMessage.Channel
Status = OutboxMessage.Status
Purpose = OutboxMessage.Purpose

# The messages that count towards the frequency cap: marketing pushed to a phone or an inbox
# (in-portal notices interrupt nobody), that went or will go out.
CAP_CHANNELS = (OutboxMessage.Channel.SMS, OutboxMessage.Channel.EMAIL)
CAP_STATUSES = (
    OutboxMessage.Status.PENDING,
    OutboxMessage.Status.DELAYED,
    OutboxMessage.Status.SENDING,
    OutboxMessage.Status.SENT,
)
# Points "expiring" in a message: those whose last day falls within this many days, as on
# the portal's expiring-soon banner and in the nightly figures (expiring_30).
EXPIRING_DAYS = 30
# Messages claimed per round of a dispatch: what a worker killed mid-send can leave failed.
DISPATCH_BATCH = 1000
UNSUBSCRIBE_SALT = "campaigns.unsubscribe"


def frequency_window_start(*, at: datetime.datetime) -> datetime.datetime:
    return at - datetime.timedelta(days=settings.MESSAGE_FREQUENCY_DAYS)


def _cap_counted_sql(*, at: datetime.datetime) -> tuple[str, list]:
    """FROM … WHERE of the messages that count towards the cap in the window ending at `at`.

    Counted by when they go out (send_after): a message delayed to 09:00 counts at 09:00."""
    table = OutboxMessage._meta.db_table
    channels = ", ".join(["%s"] * len(CAP_CHANNELS))
    statuses = ", ".join(["%s"] * len(CAP_STATUSES))
    sql = (
        f"FROM {table} "
        f"WHERE purpose = %s AND channel IN ({channels}) AND status IN ({statuses}) "
        "AND send_after > %s AND send_after <= %s"
    )
    params = [
        OutboxMessage.Purpose.MARKETING,
        *CAP_CHANNELS,
        *CAP_STATUSES,
        frequency_window_start(at=at),
        at,
    ]
    return sql, params


def capped_members_sql(*, at: datetime.datetime) -> tuple[str, list]:
    """SQL of the member ids (column `member_id`) who already have MESSAGE_FREQUENCY_CAP or
    more marketing messages counting towards the cap in the window ending at `at`: another
    marketing message to them now would be capped. The one home of the cap's count."""
    counted, params = _cap_counted_sql(at=at)
    sql = f"SELECT member_id {counted} GROUP BY member_id HAVING COUNT(*) >= %s"
    return sql, [*params, settings.MESSAGE_FREQUENCY_CAP]


def cap_counts(*, member_ids: Sequence[int], at: datetime.datetime) -> dict[int, int]:
    """Per member, the marketing messages counting towards the cap in the window ending at
    `at` (members with none are left out); the same count as `capped_members_sql`."""
    if not member_ids:
        return {}
    counted, params = _cap_counted_sql(at=at)
    if connection.vendor == "postgresql":
        members, member_params = "member_id = ANY(%s::bigint[])", [int_array(member_ids)]
    else:
        members, member_params = (
            f"member_id IN ({', '.join(['%s'] * len(member_ids))})",
            list(member_ids),
        )
    sql = f"SELECT member_id, COUNT(*) {counted} AND {members} GROUP BY member_id"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *member_params])
        return dict(cursor.fetchall())


def cap_reached(*, counted: int) -> bool:
    """Whether a further marketing message to a member with `counted` in the window is over
    the cap."""
    return counted >= settings.MESSAGE_FREQUENCY_CAP


def quiet_hours_end(*, at: datetime.datetime) -> datetime.datetime | None:
    """When quiet hours ([MESSAGE_QUIET_START_HOUR, MESSAGE_QUIET_END_HOUR) in Asia/Shanghai)
    holding `at` end; None when `at` is outside them."""
    start, end = settings.MESSAGE_QUIET_START_HOUR, settings.MESSAGE_QUIET_END_HOUR
    local = at.astimezone(BUSINESS_TZ)
    hour = local.hour
    quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return None
    day = local.date()
    if hour >= end:  # in the evening part of quiet hours that wrap past midnight
        day += datetime.timedelta(days=1)
    return datetime.datetime.combine(day, datetime.time(end), tzinfo=BUSINESS_TZ)


# --- Templates -----------------------------------------------------------------------------

FIELDS: dict[str, str] = {
    "name": _("the member's name"),
    "member_no": _("member number"),
    "tier": _("tier"),
    "balance": _("points available"),
    "expiring_points": _("points expiring within 30 days"),
    "coupon_code": _("coupon code (coupon campaigns)"),
}


class TemplateError(ValueError):
    """A message template that cannot be rendered: the messages say why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def message_template_fields() -> list[tuple[str, str]]:
    """(placeholder, label) of every member field a template may use, for the form's help."""
    return [("{" + name + "}", str(label)) for name, label in FIELDS.items()]


def message_template_check(*, template: str) -> list[str]:
    """What is wrong with a template (translated, for the campaign form); empty when fine."""
    try:
        _template_parse(template)
    except TemplateError as error:
        return error.problems
    return []


def _template_parse(template: str) -> list[tuple[str, str | None]]:
    """(literal text, field or None) pairs; raises TemplateError. Only bare names of FIELDS:
    no attribute, index, conversion or format spec, so a template can read nothing else."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise TemplateError(
            [
                gettext(
                    "A brace is not closed or not paired. Put member fields in braces, like "
                    "{name}; write {{ or }} for a brace itself."
                )
            ]
        ) from None
    problems = []
    result = []
    for literal, field, spec, conversion in parts:
        if field is not None and (field not in FIELDS or spec or conversion):
            shown = "{" + field + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            problems.append(
                gettext("Unknown member field %(field)s. Use one of: %(fields)s.")
                % {"field": shown, "fields": ", ".join("{" + name + "}" for name in FIELDS)}
            )
        result.append((literal, field))
    if problems:
        raise TemplateError(problems)
    return result


@dataclass(frozen=True)
class _Text:
    """A campaign's message in one language, parsed once for the whole audience."""

    language: str
    subject: list[tuple[str, str | None]]
    body: list[tuple[str, str | None]]
    default_subject: str
    sms_opt_out: str
    email_footer: str

    @property
    def fields(self) -> set[str]:
        return {field for _l, field in (*self.subject, *self.body) if field}


def _render(parts: list[tuple[str, str | None]], values: Mapping[str, str]) -> str:
    return "".join(literal + (values[field] if field else "") for literal, field in parts)


LANGUAGE_ZH, LANGUAGE_EN = "zh-hans", "en"


def _campaign_texts(*, campaign: Campaign) -> dict[str, _Text]:
    """The text each member language gets: its own template, else the other language's."""
    own = {
        LANGUAGE_ZH: (campaign.message_subject_zh, campaign.message_body_zh),
        LANGUAGE_EN: (campaign.message_subject_en, campaign.message_body_en),
    }
    texts = {}
    for language, other in ((LANGUAGE_ZH, LANGUAGE_EN), (LANGUAGE_EN, LANGUAGE_ZH)):
        used = language if own[language][1].strip() else other
        subject, body = own[used]
        with translation.override(used):
            texts[language] = _Text(
                language=used,
                subject=_template_parse(subject),
                body=_template_parse(body),
                default_subject=gettext("News from 会员 Loyalty"),
                sms_opt_out=gettext("Reply R to opt out"),
                email_footer=gettext("To stop receiving offers by e-mail, open this link:"),
            )
    return texts


# --- Unsubscribe ---------------------------------------------------------------------------


class InvalidUnsubscribeToken(Exception):
    """The token of an unsubscribe link was not made by us (tampered, truncated)."""


def unsubscribe_token(*, member_id: int) -> str:
    # Signed, not timed: a link in an old e-mail must still work. The same member always gets
    # the same token, so the dispatch rebuilds the header without storing it.
    return signing.dumps(member_id, salt=UNSUBSCRIBE_SALT)


def unsubscribe_links() -> Callable[[int], str]:
    """member id → the absolute unsubscribe link, the URL reversed once for a whole batch."""
    marker = "TOKEN"
    url = settings.SITE_URL.rstrip("/") + reverse("portal:unsubscribe", kwargs={"token": marker})
    head, tail = url.split(marker)
    return lambda member_id: head + unsubscribe_token(member_id=member_id) + tail


def unsubscribe_member(*, token: str) -> Member:
    """The member an unsubscribe token names; InvalidUnsubscribeToken when it is not ours."""
    try:
        member_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise InvalidUnsubscribeToken(token) from None
    member = Member.objects.filter(pk=member_id).first() if isinstance(member_id, int) else None
    if member is None:
        raise InvalidUnsubscribeToken(token)
    return member


def email_unsubscribe(*, token: str) -> Member:
    """Withdraw e-mail marketing consent for the member of an unsubscribe link (idempotent:
    a second click changes nothing and writes no second event)."""
    member = unsubscribe_member(token=token)
    return member_set_consent(
        member=member,
        kind=ConsentEvent.Kind.EMAIL,
        granted=False,
        source=ConsentEvent.Source.UNSUBSCRIBE,
        actor=None,
    )


# --- Enqueue -------------------------------------------------------------------------------


def _ids_in(ids: Sequence[int]) -> Sequence[int] | RawSQL:
    """The value of an `__in` lookup on ids: on PostgreSQL one array parameter, not a
    placeholder per id (thousands of them cost more to send than the query to run)."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", [int_array(ids)])
    return ids


def _chunks(values: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _tier_names() -> tuple[dict[int, dict[str, str]], int | None]:
    levels = list(TierLevel.objects.order_by("rank").values_list("id", "name_zh", "name_en"))
    names = {pk: {LANGUAGE_ZH: zh, LANGUAGE_EN: en or zh} for pk, zh, en in levels}
    return names, (levels[0][0] if levels else None)


def _member_rows(
    *, member_ids: Sequence[int], fields: set[str], now: datetime.datetime
) -> list[dict]:
    """What the batch needs of its members, in one query: contact, consent, language, and
    only the figures the templates use."""
    members = Member.objects.filter(pk__in=_ids_in(member_ids))
    annotations = {}
    if "balance" in fields:
        # Points available, as the portal shows them: the balance less points still pending.
        pending = (
            Lot.objects.pending(at=now)
            .filter(account__member_id=OuterRef("pk"))
            .values("account__member_id")
            .annotate(total=Sum("remaining"))
            .values("total")
        )
        balance = Account.objects.filter(member_id=OuterRef("pk")).values("balance")
        annotations["msg_balance"] = Coalesce(
            Subquery(balance, output_field=IntegerField()), Value(0)
        ) - Coalesce(Subquery(pending, output_field=IntegerField()), Value(0))
    if "expiring_points" in fields:
        expiring = (
            Lot.objects.open()
            .filter(
                account__member_id=OuterRef("pk"),
                expires_at__gt=now,
                expires_at__lte=now + datetime.timedelta(days=EXPIRING_DAYS),
            )
            .values("account__member_id")
            .annotate(total=Sum("remaining"))
            .values("total")
        )
        annotations["msg_expiring"] = Coalesce(
            Subquery(expiring, output_field=IntegerField()), Value(0)
        )
    if "tier" in fields:
        annotations["msg_tier"] = Subquery(
            MemberTier.objects.filter(member_id=OuterRef("pk")).values("level_id")[:1]
        )
    return list(
        members.annotate(**annotations).values(
            "id",
            "name",
            "member_no",
            "phone",
            "email",
            "user_id",
            "consent_sms",
            "consent_email",
            "language",
            *annotations,
            member_status=F("status"),
        )
    )


OPEN_STATUSES = (Member.Status.ACTIVE, Member.Status.FROZEN)


def reachable(*, channel: str, purpose: str, member: Mapping) -> bool:
    """The consent gate: whether `member` (a row with contact and consent) may get a message
    on `channel`. Marketing needs the channel's consent; an in-portal notice a login."""
    if member["member_status"] not in OPEN_STATUSES:
        return False
    marketing = purpose == Purpose.MARKETING
    if channel == Channel.SMS:
        return bool(member["phone"]) and (member["consent_sms"] or not marketing)
    if channel == Channel.EMAIL:
        return bool(member["email"]) and (member["consent_email"] or not marketing)
    return member["user_id"] is not None


def messages_enqueue(
    *,
    campaign: Campaign,
    member_ids: Sequence[int],
    now: datetime.datetime,
    coupons: Mapping[int, str] | None = None,
) -> int:
    """One marketing message per member and channel of `campaign`, with its status decided
    now (no consent, capped, delayed by quiet hours, waiting; in-portal notices delivered at
    once); returns the rows created. A rerun creates nothing twice."""
    channels = [
        channel
        for channel, on in (
            (Channel.SMS, campaign.send_sms),
            (Channel.EMAIL, campaign.send_email),
            (Channel.PORTAL, campaign.send_portal),
        )
        if on
    ]
    if not channels or not member_ids:
        return 0
    texts = _campaign_texts(campaign=campaign)
    fields = texts[LANGUAGE_ZH].fields | texts[LANGUAGE_EN].fields
    tiers, base_tier = _tier_names() if "tier" in fields else ({}, None)
    delayed_until = quiet_hours_end(at=now)
    # The cap is judged when the message goes out: at 09:00 for one delayed by quiet hours.
    goes_out_at = delayed_until or now
    needs_subject = Channel.EMAIL in channels or Channel.PORTAL in channels
    unsubscribe_link = unsubscribe_links()
    coupons = coupons or {}
    created = 0
    # A rerun writes nothing twice: the unique (campaign, member, channel) turns its rows
    # away. Each batch's rows go in one statement, so a member has all of the campaign's rows
    # or none, and the cap counts below are never thrown off by half a member.
    for batch in _chunks(list(member_ids), settings.CAMPAIGN_BATCH_SIZE):
        with transaction.atomic():
            counts = (
                cap_counts(member_ids=batch, at=goes_out_at)
                if set(channels) & set(CAP_CHANNELS)
                else {}
            )
            rows = []
            for member in _member_rows(member_ids=batch, fields=fields, now=now):
                member_id = member["id"]
                text = texts.get(member["language"], texts[LANGUAGE_ZH])
                values = {
                    "name": member["name"],
                    "member_no": member["member_no"],
                    "coupon_code": coupons.get(member_id, ""),
                }
                if "balance" in fields:
                    values["balance"] = str(member["msg_balance"])
                if "expiring_points" in fields:
                    values["expiring_points"] = str(member["msg_expiring"])
                if "tier" in fields:
                    level = tiers.get(member["msg_tier"] or base_tier, {})
                    values["tier"] = level.get(text.language, "")
                body = _render(text.body, values)
                subject = (
                    _render(text.subject, values) or text.default_subject if needs_subject else ""
                )
                counted = counts.get(member_id, 0)
                for channel in channels:
                    if not reachable(channel=channel, purpose=Purpose.MARKETING, member=member):
                        status = Status.NO_CONSENT
                    elif channel == Channel.PORTAL:
                        status = Status.SENT
                    elif cap_reached(counted=counted):
                        status = Status.CAPPED
                    else:
                        counted += 1
                        status = Status.DELAYED if delayed_until else Status.PENDING
                    if channel == Channel.SMS:
                        row = ("", f"{body} {text.sms_opt_out}")
                    elif channel == Channel.EMAIL:
                        link = unsubscribe_link(member_id)
                        row = (subject, f"{body}\n\n--\n{text.email_footer}\n{link}\n")
                    else:
                        row = (subject, body)
                    rows.append((member_id, channel, status, text.language, *row))
            created += _outbox_insert(
                campaign=campaign, rows=rows, now=now, delayed_until=delayed_until
            )
    return created


_INSERT_OWN = [
    "campaign_id",
    "member_id",
    "channel",
    "purpose",
    "status",
    "language",
    "subject",
    "body",
    "created_at",
    "send_after",
    "sent_at",
]


def _outbox_insert(
    *,
    campaign: Campaign,
    rows: list[tuple[int, str, str, str, str, str]],
    now: datetime.datetime,
    delayed_until: datetime.datetime | None,
) -> int:
    """Insert (member, channel, status, language, subject, body) rows, skipping any the
    campaign already has for that member and channel; returns the rows inserted."""
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        before = OutboxMessage.objects.filter(campaign=campaign).count()
        OutboxMessage.objects.bulk_create(
            [
                OutboxMessage(
                    campaign=campaign,
                    member_id=member_id,
                    channel=channel,
                    purpose=Purpose.MARKETING,
                    status=status,
                    language=language,
                    subject=subject,
                    body=body,
                    created_at=now,
                    send_after=delayed_until if status == Status.DELAYED else now,
                    sent_at=now if status == Status.SENT else None,
                )
                for member_id, channel, status, language, subject, body in rows
            ],
            ignore_conflicts=True,
            batch_size=500,
        )
        return OutboxMessage.objects.filter(campaign=campaign).count() - before
    # One statement per batch: each column one array parameter; ON CONFLICT on the unique
    # (campaign, member, channel) leaves what a concurrent or earlier run wrote.
    layout = InsertLayout(OutboxMessage, _INSERT_OWN, name="d", now=now)
    sql = (
        f"INSERT INTO {layout.table} ({layout.columns}) "  # noqa: S608 - our own names
        "SELECT %(campaign)s, v.member_id, v.channel, %(purpose)s, v.status, v.language, "
        "v.subject, v.body, %(now)s, "
        "CASE WHEN v.status = %(delayed)s THEN %(delayed_until)s::timestamptz "
        "ELSE %(now)s END, "
        f"CASE WHEN v.status = %(sent)s THEN %(now)s::timestamptz END{layout.tail} "
        "FROM unnest(%(member)s::bigint[], %(channel)s::text[], %(status)s::text[], "
        "%(language)s::text[], %(subject)s::text[], %(body)s::text[]) "
        "AS v(member_id, channel, status, language, subject, body) "
        "ON CONFLICT DO NOTHING"
    )
    columns = list(zip(*rows, strict=True))
    params = {
        **layout.params,
        "campaign": campaign.pk,
        "purpose": Purpose.MARKETING,
        "now": now,
        "delayed": Status.DELAYED,
        "delayed_until": delayed_until,
        "sent": Status.SENT,
        "member": int_array(columns[0]),
        "channel": text_array(columns[1]),
        "status": text_array(columns[2]),
        "language": text_array(columns[3]),
        "subject": text_array(columns[4]),
        "body": text_array(columns[5]),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --- Dispatch ------------------------------------------------------------------------------


def outbox_interrupted_fail(*, now: datetime.datetime) -> int:
    """Fail the messages claimed more than MESSAGE_SENDING_TIMEOUT_MINUTES ago and never
    marked: their worker died mid-send, so they may have gone out; they are never resent."""
    cutoff = now - datetime.timedelta(minutes=settings.MESSAGE_SENDING_TIMEOUT_MINUTES)
    return OutboxMessage.objects.filter(status=Status.SENDING, claimed_at__lt=cutoff).update(
        status=Status.FAILED, error="interrupted"
    )


_CLAIMED = (
    "id",
    "channel",
    "purpose",
    "subject",
    "body",
    "member_id",
    "phone",
    "email",
    "user_id",
    "consent_sms",
    "consent_email",
    "member_status",
)


def _claim(*, now: datetime.datetime, size: int) -> list[dict]:
    """Take up to `size` due messages for sending, committed before anything is sent, with
    what sending needs of their members: delayed ones first (they have waited longest), then
    waiting ones. On PostgreSQL one statement per status, rows another worker holds
    skipped, so no two workers take the same one."""
    claimed: list[dict] = []
    for status in (Status.DELAYED, Status.PENDING):
        if len(claimed) < size:
            claimed += _claim_status(status=status, now=now, size=size - len(claimed))
    return claimed


# A cancelled campaign's messages that had not gone out never do (`campaign_messages_withdraw`
# marks them; this catches a batch enqueued while the cancellation committed).
_CANCELLED_SQL = f"SELECT id FROM {Campaign._meta.db_table} WHERE status = %s"  # noqa: S608


def _claim_status(*, status: str, now: datetime.datetime, size: int) -> list[dict]:
    if connection.vendor == "postgresql":
        outbox, members = OutboxMessage._meta.db_table, Member._meta.db_table
        # One status and ORDER BY send_after: a walk along the due index from its oldest
        # entry, never over the rows claimed before (a scan of the table would pass them on
        # every round).
        sql = (
            f"WITH due AS (SELECT id FROM {outbox} "  # noqa: S608 - our own table names
            "WHERE status = %s AND send_after <= %s "
            f"AND (campaign_id IS NULL OR campaign_id NOT IN ({_CANCELLED_SQL})) "
            "ORDER BY send_after LIMIT %s "
            "FOR UPDATE SKIP LOCKED) "
            f"UPDATE {outbox} o SET status = %s, claimed_at = %s FROM due, {members} m "
            "WHERE o.id = due.id AND m.id = o.member_id "
            "RETURNING o.id, o.channel, o.purpose, o.subject, o.body, o.member_id, m.phone, "
            "m.email, m.user_id, m.consent_sms, m.consent_email, m.status"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [status, now, Campaign.Status.CANCELLED, size, Status.SENDING, now])
            return [dict(zip(_CLAIMED, row, strict=True)) for row in cursor.fetchall()]
    with transaction.atomic():
        ids = list(
            OutboxMessage.objects.filter(status=status, send_after__lte=now)
            .exclude(campaign__status=Campaign.Status.CANCELLED)
            .order_by("send_after")
            .values_list("id", flat=True)[:size]
        )
        OutboxMessage.objects.filter(pk__in=ids).update(status=Status.SENDING, claimed_at=now)
    return list(
        OutboxMessage.objects.filter(pk__in=ids).values(
            "id",
            "channel",
            "purpose",
            "subject",
            "body",
            "member_id",
            phone=F("member__phone"),
            email=F("member__email"),
            user_id=F("member__user_id"),
            consent_sms=F("member__consent_sms"),
            consent_email=F("member__consent_email"),
            member_status=F("member__status"),
        )
    )


def _error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:200]


def _send(*, claimed: list[dict], now: datetime.datetime) -> int:
    """Send claimed messages; mark them sent, failed or (consent withdrawn since they were
    enqueued) no consent, a few statements for the lot. Returns the messages sent."""
    sent: list[int] = []
    refused: list[int] = []
    failed: dict[str, list[int]] = {}
    sms_backend = None
    email_connection = None
    unsubscribe_link = unsubscribe_links()
    try:
        for message in claimed:
            channel = message["channel"]
            if not reachable(channel=channel, purpose=message["purpose"], member=message):
                refused.append(message["id"])
                continue
            try:
                if channel == Channel.SMS:
                    if sms_backend is None:
                        sms_backend = import_string(settings.SMS_BACKEND)()
                    sms_backend.send(SmsMessage(phone=message["phone"], text=message["body"]))
                elif channel == Channel.EMAIL:
                    if email_connection is None:
                        email_connection = mail.get_connection()
                        email_connection.open()
                    email_connection.send_messages([_email(message, unsubscribe_link)])
            except Exception as error:  # any gateway failure fails this message only
                failed.setdefault(_error_text(error), []).append(message["id"])
            else:
                sent.append(message["id"])
    finally:
        if email_connection is not None:
            email_connection.close()
        # Marked whatever happened above: what went out is never left to be failed later.
        with transaction.atomic():
            for ids, values in (
                (sent, {"status": Status.SENT, "sent_at": now}),
                (refused, {"status": Status.NO_CONSENT}),
                *((ids, {"status": Status.FAILED, "error": text}) for text, ids in failed.items()),
            ):
                if ids:
                    OutboxMessage.objects.filter(pk__in=_ids_in(ids)).update(**values)
    return len(sent)


def _email(message: Mapping, unsubscribe_link: Callable[[int], str]) -> mail.EmailMessage:
    headers = {}
    if message["purpose"] == Purpose.MARKETING:
        # RFC 8058: the mail client posts "List-Unsubscribe=One-Click" to the link.
        headers = {
            "List-Unsubscribe": f"<{unsubscribe_link(message['member_id'])}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    return mail.EmailMessage(
        subject=message["subject"], body=message["body"], to=[message["email"]], headers=headers
    )


def outbox_quiet_hours_hold(*, now: datetime.datetime) -> int:
    """In quiet hours, texts and e-mails that came due but did not go out before they began
    (a long send, a worker that was down) wait for their end: quiet hours delay a message,
    never send or drop it. Returns the messages held."""
    end = quiet_hours_end(at=now)
    if end is None:
        return 0
    return OutboxMessage.objects.filter(
        status__in=(Status.PENDING, Status.DELAYED),
        channel__in=(OutboxMessage.Channel.SMS, OutboxMessage.Channel.EMAIL),
        send_after__lte=now,
    ).update(status=Status.DELAYED, send_after=end)


def campaign_messages_withdraw(*, campaign: Campaign) -> int:
    """A cancelled campaign's messages that have not gone out (waiting or delayed) never
    will: marked failed, saying why. Returns how many."""
    return OutboxMessage.objects.filter(
        campaign=campaign, status__in=(Status.PENDING, Status.DELAYED)
    ).update(status=Status.FAILED, error="campaign cancelled")


def outbox_dispatch(*, now: datetime.datetime, limit: int | None = None) -> int:
    """Send the messages due at `now` (waiting, or delayed until now or earlier), at most
    `limit`; returns the messages sent. Each round's claim commits before it sends: call it
    outside a transaction."""
    outbox_interrupted_fail(now=now)
    outbox_quiet_hours_hold(now=now)
    taken = sent = 0
    while limit is None or taken < limit:
        size = DISPATCH_BATCH if limit is None else min(DISPATCH_BATCH, limit - taken)
        claimed = _claim(now=now, size=size)
        if not claimed:
            break
        taken += len(claimed)
        sent += _send(claimed=claimed, now=now)
    return sent


# --- Reads ---------------------------------------------------------------------------------


def campaign_message_counts(*, campaign: Campaign) -> dict[str, dict[str, int]]:
    """channel → status → rows of the campaign's outbox (what the campaign page shows)."""
    counts: dict[str, dict[str, int]] = {}
    rows = (
        OutboxMessage.objects.filter(campaign=campaign)
        .order_by()
        .values_list("channel", "status")
        .annotate(n=Count("id"))
    )
    for channel, status, n in rows:
        counts.setdefault(channel, {})[status] = n
    return counts


def member_outbox(*, member: Member, limit: int = 50) -> list[OutboxMessage]:
    """The member's latest messages, any channel and purpose, newest first."""
    return list(
        OutboxMessage.objects.filter(member=member)
        .select_related("campaign")
        .order_by("-created_at", "-id")[:limit]
    )


def _notices(member: Member):
    return OutboxMessage.objects.filter(
        member=member, channel=Channel.PORTAL, status=Status.SENT
    ).order_by("-sent_at", "-id")


def member_notices(*, member: Member, limit: int | None = None) -> list[OutboxMessage]:
    """The in-portal notices the member got, newest first."""
    notices = _notices(member)
    return list(notices[:limit] if limit else notices)


def member_notices_unread_count(*, member: Member) -> int:
    return _notices(member).filter(read_at__isnull=True).count()


def member_notice_get(*, member: Member, message_id: int) -> OutboxMessage | None:
    return _notices(member).filter(pk=message_id).first()


def member_notice_read(
    *, member: Member, message_id: int, now: datetime.datetime | None = None
) -> bool:
    """Mark one of the member's notices read (the first reading time stays); False when the
    member has no such notice."""
    now = now or timezone.now()
    notice = _notices(member).filter(pk=message_id)
    if not notice.exists():
        return False
    notice.filter(read_at__isnull=True).update(read_at=now)
    return True


def member_notices_read_all(*, member: Member, now: datetime.datetime | None = None) -> int:
    return _notices(member).filter(read_at__isnull=True).update(read_at=now or timezone.now())


def service_message_record(
    *, member: Member, channel: str, subject: str, text: str, error: str = ""
) -> OutboxMessage:
    """The outbox row of a service message members sent itself (tier and expiry notices,
    birthday gifts, the welcome text): sent, or failed with why. Registered with the
    members' message hook; never capped, never counted by the cap."""
    now = timezone.now()
    # A savepoint: a row that cannot be written leaves the caller's transaction usable.
    with transaction.atomic():
        return OutboxMessage.objects.create(
            member=member,
            channel=channel,
            purpose=Purpose.SERVICE,
            status=Status.FAILED if error else Status.SENT,
            language=translation.get_language() or settings.LANGUAGE_CODE,
            subject=subject[:200],
            body=text,
            created_at=now,
            send_after=now,
            sent_at=None if error else now,
            error=error[:200],
        )


# Notices shown in the portal home's panel; the notices page lists them all.
PANEL_NOTICES = 3


def portal_notices_panel(member: Member, request: HttpRequest) -> dict[str, Any] | None:
    notices = member_notices(member=member, limit=PANEL_NOTICES)
    if not notices:
        return None
    return {"notices": notices, "unread": member_notices_unread_count(member=member)}


def staff_outbox_panel(member: Member, request: HttpRequest) -> dict[str, Any]:
    return {"outbox": member_outbox(member=member)}


def register() -> None:
    """Called from `CampaignsConfig.ready()`: the outbox's panels and hooks."""
    from core.panels import portal_panel_register, staff_member_panel_register
    from members.hooks import member_message_sent_hook_register

    member_message_sent_hook_register(service_message_record)

    # Right after the expiring-points banner (10): news first, then the balance (20).
    portal_panel_register(
        name="campaigns-notices",
        order=15,
        template="campaigns/messages/_portal_notices.html",
        context=portal_notices_panel,
    )
    # After the figures (60): what we told the member, once who they are is read.
    staff_member_panel_register(
        name="campaigns-outbox",
        order=70,
        template="campaigns/messages/_staff_outbox.html",
        context=staff_outbox_panel,
    )
