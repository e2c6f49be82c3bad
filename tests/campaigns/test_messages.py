"""The outbox's rules: consent per channel, quiet hours, the frequency cap, the opt-out line,
the rendered text, reruns and a dispatch killed mid-send."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail

from campaigns.messages import (
    campaign_message_counts,
    capped_members_sql,
    message_template_check,
    message_template_fields,
    messages_enqueue,
    outbox_dispatch,
)
from campaigns.models import OutboxMessage
from members.models import ConsentEvent
from members.services import member_set_consent
from points.ledger import account_lock, fingerprint, points_credit
from points.models import Account, LedgerTransaction
from tests.factories import MemberFactory
from tiers.models import MemberTier, TierLevel

from .outbox_world import (
    NOON,
    RefusingBackend,
    campaign,
    member,
    past_message,
    shanghai,
    statuses,
)

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def test_consent_per_channel_is_a_hard_gate(sms_outbox):
    texts_ok = member(sms=True, email=False, login=True)
    no_sms_consent = member(sms=False, email=True)
    consent_no_address = member(sms=False, email=False, consent_email=True)
    no_login = member(sms=False, email=False)
    c = campaign(sms=True, email=True, portal=True)
    ids = [
        texts_ok.pk,
        no_sms_consent.pk,
        consent_no_address.pk,
        no_login.pk,
    ]

    assert messages_enqueue(campaign=c, member_ids=ids, now=NOON) == 12
    got = statuses(c)
    assert got[(texts_ok.pk, "sms")] == "pending"
    assert got[(texts_ok.pk, "email")] == "no_consent"  # no e-mail consent
    # A notice needs a login, not marketing consent; it is delivered at once.
    assert got[(texts_ok.pk, "portal")] == "sent"
    assert got[(no_sms_consent.pk, "sms")] == "no_consent"
    assert got[(no_sms_consent.pk, "email")] == "pending"
    assert got[(no_sms_consent.pk, "portal")] == "no_consent"
    assert got[(consent_no_address.pk, "email")] == "no_consent"  # consent but no address
    assert {got[(no_login.pk, ch)] for ch in ("sms", "email", "portal")} == {"no_consent"}

    assert outbox_dispatch(now=NOON) == 2
    assert [m.phone for m in sms_outbox] == [texts_ok.phone]
    assert [m.to for m in mail.outbox] == [[no_sms_consent.email]]
    assert OutboxMessage.objects.filter(status="no_consent").count() == 9


def test_consent_withdrawn_after_enqueue_stops_the_message(sms_outbox):
    late = member(sms=True)
    c = campaign(sms=True)
    messages_enqueue(campaign=c, member_ids=[late.pk], now=NOON)
    member_set_consent(
        member=late, kind=ConsentEvent.Kind.SMS, granted=False, source="portal", actor=None
    )

    assert outbox_dispatch(now=NOON) == 0
    assert sms_outbox == []
    assert statuses(c) == {(late.pk, "sms"): "no_consent"}


def test_a_message_enqueued_in_quiet_hours_waits_until_nine(sms_outbox):
    night_owl = member(sms=True)
    c = campaign(sms=True)
    messages_enqueue(campaign=c, member_ids=[night_owl.pk], now=shanghai(10, 22, 30))
    message = OutboxMessage.objects.get(campaign=c)
    assert message.status == "delayed"
    assert message.send_after == shanghai(11, 9)  # the next morning at 09:00 Shanghai

    assert outbox_dispatch(now=shanghai(10, 23)) == 0
    assert outbox_dispatch(now=shanghai(11, 8, 59)) == 0
    assert sms_outbox == []
    message.refresh_from_db()
    assert message.status == "delayed"  # waiting, never dropped

    assert outbox_dispatch(now=shanghai(11, 9)) == 1
    assert len(sms_outbox) == 1
    message.refresh_from_db()
    assert (message.status, message.sent_at) == ("sent", shanghai(11, 9))


def test_at_08_59_a_message_waits_a_minute_and_at_09_00_it_does_not():
    early, on_time = member(sms=True), member(sms=True)
    first, second = campaign(sms=True), campaign(sms=True)
    messages_enqueue(campaign=first, member_ids=[early.pk], now=shanghai(10, 8, 59))
    messages_enqueue(campaign=second, member_ids=[on_time.pk], now=shanghai(10, 9))
    delayed = OutboxMessage.objects.get(campaign=first)
    assert (delayed.status, delayed.send_after) == ("delayed", shanghai(10, 9))
    assert OutboxMessage.objects.get(campaign=second).status == "pending"
    # 21:00 starts quiet hours.
    third = campaign(sms=True)
    messages_enqueue(campaign=third, member_ids=[early.pk], now=shanghai(10, 21))
    assert OutboxMessage.objects.get(campaign=third).send_after == shanghai(11, 9)


def test_in_portal_notices_are_delivered_at_night_too():
    reader = member(sms=False, email=False, login=True)
    c = campaign(portal=True)
    messages_enqueue(campaign=c, member_ids=[reader.pk], now=shanghai(10, 23))
    notice = OutboxMessage.objects.get(campaign=c)
    assert (notice.status, notice.sent_at) == ("sent", shanghai(10, 23))


def test_the_frequency_cap_counts_marketing_in_a_rolling_seven_days():
    capped = member(sms=True)
    for days_ago in (1, 3, 6):
        past_message(capped, at=NOON - days_ago * DAY)
    # Its third is 7 days and 1 minute old: out of the window, so only two count.
    free = member(sms=True)
    for at in (NOON - DAY, NOON - 2 * DAY, NOON - 7 * DAY - datetime.timedelta(minutes=1)):
        past_message(free, at=at)
    # Service messages are exempt and do not count; nor does a notice or a failed text.
    served = member(sms=True)
    for days_ago in (1, 2, 3):
        past_message(served, at=NOON - days_ago * DAY, purpose="service")
    past_message(served, at=NOON - DAY, channel="portal")
    past_message(served, at=NOON - DAY, status="failed")
    c = campaign(sms=True)

    messages_enqueue(campaign=c, member_ids=[capped.pk, free.pk, served.pk], now=NOON)

    assert statuses(c) == {
        (capped.pk, "sms"): "capped",
        (free.pk, "sms"): "pending",
        (served.pk, "sms"): "pending",
    }
    assert outbox_dispatch(now=NOON) == 2
    assert OutboxMessage.objects.get(campaign=c, member=capped).sent_at is None


def test_the_cap_counts_what_the_same_batch_enqueued():
    two_already = member(sms=True, email=True)
    past_message(two_already, at=NOON - DAY)
    past_message(two_already, at=NOON - 2 * DAY, channel="email")
    c = campaign(sms=True, email=True)

    messages_enqueue(campaign=c, member_ids=[two_already.pk], now=NOON)

    # The SMS is the third in seven days; the e-mail would be the fourth.
    assert statuses(c) == {(two_already.pk, "sms"): "pending", (two_already.pk, "email"): "capped"}


def test_the_cap_agrees_with_the_funnels_count_of_capped_members():
    from django.db import connection

    capped, free = member(sms=True), member(sms=True)
    for days_ago in (1, 2, 3):
        past_message(capped, at=NOON - days_ago * DAY)
    past_message(free, at=NOON - DAY)
    sql, params = capped_members_sql(at=NOON)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert [row[0] for row in cursor.fetchall()] == [capped.pk]


def test_a_delayed_message_counts_towards_the_cap_when_it_goes_out():
    busy = member(sms=True)
    past_message(busy, at=shanghai(9, 12))
    evening = [campaign(sms=True) for _ in range(3)]
    for c in evening:
        messages_enqueue(campaign=c, member_ids=[busy.pk], now=shanghai(10, 22))
    # All three go out at 09:00 the next morning: two fit under the cap with the one sent.
    assert [statuses(c)[(busy.pk, "sms")] for c in evening] == ["delayed", "delayed", "capped"]


def test_marketing_sms_carry_the_opt_out_line_in_the_members_language(sms_outbox):
    zh = member(sms=True, name="王芳")
    en = member(sms=True, name="Amy Li", language="en")
    c = campaign(sms=True)
    messages_enqueue(campaign=c, member_ids=[zh.pk, en.pk], now=NOON)
    outbox_dispatch(now=NOON)

    texts = {m.phone: m.text for m in sms_outbox}
    assert texts[zh.phone] == "王芳您好，春季回馈已开始。 拒收请回复R"
    assert texts[en.phone] == "Hello Amy Li, our spring treats have begun. Reply R to opt out"


def _credit(member, points: int, *, earned: datetime.datetime, key: str) -> None:
    points_credit(
        account=account_lock(member=member),
        points=points,
        kind=LedgerTransaction.Kind.EARN,
        counter_kind=Account.Kind.ISSUANCE,
        key=key,
        request_fingerprint=fingerprint({"k": key}),
        source="purchase",
        occurred_at=earned,
        now=NOON,
    )


def test_the_text_is_rendered_with_member_fields_in_each_language(sms_outbox):
    template = {
        "message_body_zh": "{name}（{member_no}），{tier}，可用{balance}分，{expiring_points}分"
        "将过期，券码{coupon_code}",
        "message_body_en": "{name} ({member_no}), {tier}, {balance} points, {expiring_points} "
        "expiring, code {coupon_code}",
    }
    zh = member(sms=True, name="王芳")
    en = member(sms=True, name="Amy Li", language="en")
    gold = TierLevel.objects.get(code="gold")
    MemberTier.objects.create(
        member=en, level=gold, achieved_at=NOON - 30 * DAY, period_start=NOON - 30 * DAY
    )
    # Lots expire at the end of the 12th month after the month earned: March 2025's when
    # 2026-04-01 begins, within 30 days of 2026-03-10; March 2026's in 2027.
    _credit(zh, 300, earned=shanghai(5, 12).replace(year=2025), key="a")
    _credit(zh, 200, earned=NOON - DAY, key="b")
    c = campaign(sms=True, **template)

    messages_enqueue(
        campaign=c, member_ids=[zh.pk, en.pk], now=NOON, coupons={zh.pk: "CP-7QX2", en.pk: "CP-9K"}
    )

    bodies = dict(OutboxMessage.objects.filter(campaign=c).values_list("member_id", "body"))
    assert bodies[zh.pk] == (
        f"王芳（{zh.member_no}），普通会员，可用500分，300分将过期，券码CP-7QX2 拒收请回复R"
    )
    assert bodies[en.pk] == (
        f"Amy Li ({en.member_no}), Gold, 0 points, 0 expiring, code CP-9K Reply R to opt out"
    )
    languages = dict(OutboxMessage.objects.filter(campaign=c).values_list("member_id", "language"))
    assert languages == {zh.pk: "zh-hans", en.pk: "en"}


def test_a_member_gets_the_other_language_when_theirs_is_empty():
    en = member(sms=True, name="Amy Li", language="en")
    c = campaign(sms=True, message_body_en="", message_subject_en="")
    messages_enqueue(campaign=c, member_ids=[en.pk], now=NOON)
    message = OutboxMessage.objects.get(campaign=c)
    assert message.body == "Amy Li您好，春季回馈已开始。 拒收请回复R"
    assert message.language == "zh-hans"


def test_marketing_e_mail_carries_a_one_click_unsubscribe_link():
    reader = member(sms=False, email=True, name="王芳")
    c = campaign(email=True)
    messages_enqueue(campaign=c, member_ids=[reader.pk], now=NOON)
    outbox_dispatch(now=NOON)

    [sent] = mail.outbox
    assert sent.subject == "春季礼遇"
    assert sent.body.startswith("王芳您好，春季回馈已开始。")
    link = sent.body.strip().splitlines()[-1]
    assert link.startswith("http://localhost:8000/unsubscribe/")
    assert sent.extra_headers["List-Unsubscribe"] == f"<{link}>"
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in sent.message().as_string()


def test_a_rerun_enqueues_nothing_twice():
    members = [member(sms=True, email=True) for _ in range(3)]
    ids = [m.pk for m in members]
    c = campaign(sms=True, email=True)
    assert messages_enqueue(campaign=c, member_ids=ids[:2], now=NOON) == 4
    # The launch died after the first batch; started again it finishes the rest only.
    assert messages_enqueue(campaign=c, member_ids=ids, now=NOON) == 2
    assert messages_enqueue(campaign=c, member_ids=ids, now=NOON) == 0
    assert OutboxMessage.objects.filter(campaign=c).count() == 6
    # The cap is not fooled by a rerun: each member has two messages, not four.
    assert set(statuses(c).values()) == {"pending"}


def test_a_dispatch_killed_after_claiming_fails_those_messages_and_never_resends(sms_outbox):
    members = [member(sms=True) for _ in range(3)]
    c = campaign(sms=True)
    messages_enqueue(campaign=c, member_ids=[m.pk for m in members], now=NOON)
    # A worker claimed two at 14:00 and died before marking them; the third still waits.
    claimed = list(OutboxMessage.objects.filter(campaign=c).order_by("id")[:2])
    OutboxMessage.objects.filter(pk__in=[m.pk for m in claimed]).update(
        status="sending", claimed_at=NOON
    )

    # Within the timeout they are left alone (the worker may still be sending).
    assert outbox_dispatch(now=NOON + datetime.timedelta(minutes=5)) == 1
    assert len(sms_outbox) == 1
    left = OutboxMessage.objects.filter(pk__in=[m.pk for m in claimed])
    assert set(left.values_list("status", flat=True)) == {"sending"}

    assert outbox_dispatch(now=NOON + datetime.timedelta(minutes=11)) == 0
    assert len(sms_outbox) == 1
    for message in claimed:
        message.refresh_from_db()
        assert (message.status, message.error, message.sent_at) == ("failed", "interrupted", None)
    assert outbox_dispatch(now=NOON + DAY) == 0
    assert len(sms_outbox) == 1


def test_a_gateway_failure_fails_one_message_and_the_rest_go(settings, sms_outbox):
    settings.SMS_BACKEND = "tests.campaigns.outbox_world.RefusingBackend"
    members = [member(sms=True) for _ in range(3)]
    RefusingBackend.refused = {members[1].phone}
    c = campaign(sms=True)
    messages_enqueue(campaign=c, member_ids=[m.pk for m in members], now=NOON)

    assert outbox_dispatch(now=NOON) == 2
    failed = OutboxMessage.objects.get(campaign=c, member=members[1])
    assert (failed.status, failed.error) == ("failed", "RuntimeError: gateway said no")


def test_counts_on_the_campaign_page_equal_rows():
    a, b = member(sms=True, email=False, login=True), member(sms=False, email=True)
    c = campaign(sms=True, email=True, portal=True)
    messages_enqueue(campaign=c, member_ids=[a.pk, b.pk], now=NOON)
    outbox_dispatch(now=NOON)

    assert campaign_message_counts(campaign=c) == {
        "sms": {"sent": 1, "no_consent": 1},
        "email": {"sent": 1, "no_consent": 1},
        "portal": {"sent": 1, "no_consent": 1},
    }


def test_dispatch_honours_its_limit(sms_outbox):
    c = campaign(sms=True)
    messages_enqueue(campaign=c, member_ids=[member(sms=True).pk for _ in range(5)], now=NOON)
    assert outbox_dispatch(now=NOON, limit=3) == 3
    assert outbox_dispatch(now=NOON) == 2
    assert len(sms_outbox) == 5


def test_closed_members_get_nothing():
    gone = MemberFactory(consent_sms=True, status="closed", closed_at=NOON - DAY)
    c = campaign(sms=True)
    messages_enqueue(campaign=c, member_ids=[gone.pk], now=NOON)
    assert statuses(c) == {(gone.pk, "sms"): "no_consent"}


def test_template_check_names_unknown_fields_and_bad_braces():
    assert message_template_check(template="{name}，您有{balance}分，{{不是字段}}") == []
    [unknown] = message_template_check(template="{nmae}您好")
    assert "{nmae}" in unknown and "{name}" in unknown
    [attribute] = message_template_check(template="{name.__class__}")
    assert "{name.__class__}" in attribute
    [braces] = message_template_check(template="您好{name")
    assert "{{" in braces
    fields = dict(message_template_fields())
    assert set(fields) == {
        "{name}",
        "{member_no}",
        "{tier}",
        "{balance}",
        "{expiring_points}",
        "{coupon_code}",
    }


def test_a_text_enqueued_before_nine_pm_but_not_sent_by_then_waits_for_the_morning(sms_outbox):
    # Enqueued at 20:58 (a long send, then the worker was busy): due, still waiting at 21:05.
    late_sender = member(sms=True)
    c = campaign(sms=True, portal=True)
    messages_enqueue(campaign=c, member_ids=[late_sender.pk], now=shanghai(10, 20, 58))
    assert statuses(c)[(late_sender.pk, "sms")] == "pending"

    assert outbox_dispatch(now=shanghai(10, 21, 5)) == 0
    assert sms_outbox == []
    message = OutboxMessage.objects.get(campaign=c, channel="sms")
    assert (message.status, message.send_after) == ("delayed", shanghai(11, 9))
    # A worker that was down all night finds it at 03:00: still not sent.
    assert outbox_dispatch(now=shanghai(11, 3)) == 0

    assert outbox_dispatch(now=shanghai(11, 9)) == 1
    assert [m.phone for m in sms_outbox] == [late_sender.phone]


def test_a_cancelled_campaigns_unsent_messages_never_go_out(sms_outbox):
    from campaigns.services import campaign_cancel

    evening, morning = member(sms=True), member(sms=True)
    c = campaign(sms=True)
    messages_enqueue(campaign=c, member_ids=[evening.pk], now=shanghai(10, 22))
    messages_enqueue(campaign=c, member_ids=[morning.pk], now=shanghai(11, 10))
    campaign_cancel(campaign=c, actor=None, now=shanghai(11, 10, 1))

    assert outbox_dispatch(now=shanghai(11, 10, 2)) == 0
    assert sms_outbox == []
    assert set(statuses(c).values()) == {"failed"}
    assert set(OutboxMessage.objects.filter(campaign=c).values_list("error", flat=True)) == {
        "campaign cancelled"
    }
