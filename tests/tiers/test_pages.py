"""Tier pages through real URLs: the member's tier card and ladder, the staff panel and the
manual tier form, and the tier in the POS member object."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import AuditEntry
from members.services import api_token_create
from points.services import purchase_record
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory, UserFactory
from tiers.models import TierHistory, TierLevel
from tiers.selectors import member_tier


@pytest.fixture
def store(db):
    return StoreFactory(code="SH001")


@pytest.fixture
def member(db):
    return MemberFactory(user=UserFactory(email="m@example.com"), birthday=None)


def buy(member, store, amount, receipt):
    return purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=timezone.now(),
        amount=Decimal(amount),
    )


def test_portal_home_shows_the_tier_card_with_progress(client, member, store):
    buy(member, store, "1200", "R1")
    client.force_login(member.user)
    html = client.get(reverse("portal:home"), headers={"Accept-Language": "en"}).content.decode()
    assert '<span class="tier-name">Regular</span>' in html
    assert 'id="next-spend"' in html and 'max="2000"' in html and 'value="1200"' in html
    assert "Still needed: ¥800.00 of spending or 800 points earned." in html


def test_portal_tiers_page_lists_every_level_and_the_members_own(client, member, store):
    buy(member, store, "2100", "R1")
    client.force_login(member.user)
    response = client.get(reverse("portal:tiers"), headers={"Accept-Language": "en"})
    html = response.content.decode()
    assert response.status_code == 200
    for name in ("Regular", "Silver", "Gold", "Platinum", "Diamond"):
        assert name in html
    assert "your tier" in html
    valid = member_tier(member=member).valid_until
    assert f"Valid until {valid:%Y-%m-%d}" in html
    assert 'id="retain-spend"' in html  # what keeping Silver takes
    assert "Your tier history" in html


def test_staff_panel_shows_tier_and_history(client, member, store):
    buy(member, store, "8500", "R1")
    client.force_login(make_role_user("store_staff"))
    html = client.get(
        reverse("staff:member-detail", args=[member.member_no]), headers={"Accept-Language": "en"}
    ).content.decode()
    assert "Gold" in html and "10% off" in html
    assert "Regular → Gold" in html
    # Store staff may not set tiers by hand.
    assert reverse("staff:tier-override", args=[member.member_no]) not in html


def test_store_staff_cannot_set_a_tier_by_hand(client, member):
    client.force_login(make_role_user("store_staff"))
    url = reverse("staff:tier-override", args=[member.member_no])
    assert client.get(url).status_code == 403
    assert client.post(url, {"level": 3, "until": "2099-01-01", "reason": "x"}).status_code == 403
    assert not TierHistory.objects.exists()


def test_a_manager_sets_a_tier_by_hand_with_reason_and_end_date(client, member):
    manager = make_role_user("store_manager")
    client.force_login(manager)
    url = reverse("staff:tier-override", args=[member.member_no])
    gold = TierLevel.objects.get(code="gold")
    until = timezone.localdate() + datetime.timedelta(days=30)
    page = client.get(url, headers={"Accept-Language": "en"}).content.decode()
    assert '<label for="id_reason">Reason</label>' in page
    response = client.post(
        url, {"level": gold.pk, "until": until.isoformat(), "reason": "Complaint goodwill"}
    )
    assert response.status_code == 302
    info = member_tier(member=member)
    assert (info.level.code, info.valid_until, info.is_override) == ("gold", until, True)
    history = TierHistory.objects.get(member=member)
    assert (history.reason, history.actor, history.note) == (
        "manual",
        manager,
        "Complaint goodwill",
    )
    entry = AuditEntry.objects.get(action="tier.override")
    assert entry.details["to"] == "gold" and entry.actor == manager


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reason": ""}, "This field is required."),
        ({"until": "2020-01-01"}, "The end date cannot be in the past."),
        ({"until": "not a date"}, "Enter a valid date."),
    ],
)
def test_bad_manual_tier_input_gets_a_message_and_writes_nothing(client, member, data, message):
    client.force_login(make_role_user("store_manager"))
    gold = TierLevel.objects.get(code="gold")
    form = {
        "level": gold.pk,
        "until": (timezone.localdate() + datetime.timedelta(days=5)).isoformat(),
        "reason": "ok",
        **data,
    }
    response = client.post(
        reverse("staff:tier-override", args=[member.member_no]),
        form,
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not TierHistory.objects.exists()
    assert not AuditEntry.objects.filter(action="tier.override").exists()


def test_pos_lookup_carries_the_tier_and_its_discount(client, member, store):
    buy(member, store, "2500", "R1")
    token = api_token_create(store=store, name="till 1")[1]
    response = client.get(
        "/api/v1/members/lookup",
        {"member_no": member.member_no},
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
    )
    assert response.status_code == 200
    tier = response.json()["tier"]
    assert tier["code"] == "silver" and tier["name"] == "Silver"
    assert tier["discount_rate"] == "5.00"
    assert tier["valid_until"] == member_tier(member=member).valid_until.isoformat()
