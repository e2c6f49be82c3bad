"""The builder's figures for a segment: the reachability funnel and the sample."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from campaigns.models import OutboxMessage
from campaigns.segments import segment_funnel, segment_sample

from .segment_population import NOW, population

EVERYONE = {
    "version": 1,
    "rule": {"group": "and", "rules": [{"field": "days_since_enrolment", "op": "ge", "value": 0}]},
}


@pytest.fixture
def people(db):
    return population()


def _marketing_sms(member, *, days_ago: float, status=OutboxMessage.Status.SENT) -> None:
    when = NOW - datetime.timedelta(days=days_ago)
    OutboxMessage.objects.create(
        member=member,
        channel=OutboxMessage.Channel.SMS,
        purpose=OutboxMessage.Purpose.MARKETING,
        status=status,
        body="促销 拒收请回复R",
        created_at=when,
        send_after=when,
        sent_at=when if status == OutboxMessage.Status.SENT else None,
    )


def test_funnel_counts_consent_and_an_address_per_channel(people):
    # Five targetable members; a: SMS consent with a phone and a login; b: e-mail consent
    # and an e-mail; c, n, e consented to nothing and have no login.
    funnel = segment_funnel(rules=EVERYONE, at=NOW, holdout_percent=Decimal(0))
    assert (funnel.matching, funnel.reachable_sms, funnel.reachable_email) == (5, 1, 1)
    assert funnel.reachable_portal == 1
    assert funnel.reachable == 2
    assert (funnel.after_holdout, funnel.after_cap) == (2, 2)
    # The holdout takes its share of the reachable: 2 × 0.9 = 1.8 → 2; 2 × 0.5 = 1.
    assert segment_funnel(rules=EVERYONE, at=NOW).after_holdout == 2
    assert segment_funnel(rules=EVERYONE, at=NOW, holdout_percent=Decimal(50)).after_holdout == 1
    sms_only = segment_funnel(rules=EVERYONE, at=NOW, channels=("sms",))
    assert (sms_only.reachable, sms_only.reachable_email) == (1, 1)


def test_members_at_the_frequency_cap_drop_out_unless_the_portal_reaches_them(people):
    a = people["a"]
    for days_ago in (1, 2, 3):
        _marketing_sms(a, days_ago=days_ago)
    at_cap = segment_funnel(
        rules=EVERYONE, at=NOW, holdout_percent=Decimal(0), channels=("sms", "email")
    )
    assert (at_cap.reachable, at_cap.after_cap) == (2, 1)
    # The portal notice is not capped: a still counts.
    with_portal = segment_funnel(rules=EVERYONE, at=NOW, holdout_percent=Decimal(0))
    assert with_portal.after_cap == 2
    # Eight days ago is outside the rolling week: two in the window are under the cap.
    OutboxMessage.objects.filter(member=a).order_by("send_after").first().delete()
    _marketing_sms(a, days_ago=8)
    under = segment_funnel(rules=EVERYONE, at=NOW, holdout_percent=Decimal(0), channels=("sms",))
    assert under.after_cap == 1


def test_sample_shows_masked_phones_and_the_figures(people):
    rows = segment_sample(rules=EVERYONE, at=NOW, size=3)
    a, b, c = people["a"], people["b"], people["c"]
    assert [row.member_no for row in rows] == [a.member_no, b.member_no, c.member_no]
    first = rows[0]
    national = a.phone.removeprefix("+86")
    assert first.phone_masked == national[:3] + "****" + national[-4:]
    assert national not in repr(rows)
    assert first.tier in ("金卡会员", "Gold")
    assert first.rfm_cell in ("重要价值", "Champions")
    assert first.last_purchase_at is not None
    assert first.last_purchase_at.date() == datetime.date(2026, 7, 10)
    # e has no figures row: never purchased (as far as the figures know), base tier.
    everyone = segment_sample(rules=EVERYONE, at=NOW)
    assert len(everyone) == 5
    e_row = next(row for row in everyone if row.member_no == people["e"].member_no)
    assert e_row.stage in ("从未购买", "Never purchased")
    assert e_row.tier in ("普通会员", "Regular")
    assert e_row.last_purchase_at is None
