"""A manual tier ends within TIER_OVERRIDE_MAX_MONTHS (24) of the day it is set: the staff form
says so, and the service refuses it on every other path too."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from members.models import AuditEntry
from tests.conftest import make_role_user
from tests.factories import MemberFactory, UserFactory
from tiers.models import TierHistory, TierLevel
from tiers.selectors import member_tier
from tiers.services import TierError, tier_override_set

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 10, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english_and_frozen_clock(settings, time_machine):
    settings.LANGUAGE_CODE = "en"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def member():
    return MemberFactory()


def post(client, member, until):
    return client.post(
        reverse("staff:tier-override", args=[member.member_no]),
        {
            "level": TierLevel.objects.get(code="gold").pk,
            "until": until,
            "reason": "Goodwill",
        },
        headers={"Accept-Language": "en"},
    )


def test_the_form_refuses_an_end_date_more_than_two_years_ahead(client, member):
    client.force_login(make_role_user("store_manager"))
    response = post(client, member, "2028-03-16")
    assert response.status_code == 400
    assert (
        "A manual tier ends within 24 months: 2028-03-15 at the latest."
        in response.content.decode()
    )
    assert not TierHistory.objects.exists()
    assert not AuditEntry.objects.filter(action="tier.override").exists()


def test_the_form_accepts_exactly_two_years(client, member):
    client.force_login(make_role_user("store_manager"))
    assert post(client, member, "2028-03-15").status_code == 302
    assert member_tier(member=member).valid_until == datetime.date(2028, 3, 15)


def test_an_end_date_is_required(client, member):
    client.force_login(make_role_user("store_manager"))
    response = post(client, member, "")
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not TierHistory.objects.exists()


def test_the_service_refuses_it_too(member):
    with pytest.raises(TierError, match="within 24 months: 2028-03-15"):
        tier_override_set(
            member=member,
            level=TierLevel.objects.get(code="gold"),
            until=datetime.date(2099, 1, 1),
            reason="Forever",
            actor=UserFactory(is_staff=True),
        )
    assert not TierHistory.objects.exists()


def test_the_limit_is_a_setting(settings, client, member):
    settings.TIER_OVERRIDE_MAX_MONTHS = 6
    client.force_login(make_role_user("administrator"))
    response = post(client, member, "2026-09-16")
    assert "A manual tier ends within 6 months: 2026-09-15 at the latest." in (
        response.content.decode()
    )
    assert post(client, member, "2026-09-15").status_code == 302


# Just after midnight in Shanghai, still the day before in UTC: the form and the service
# count from the same (business) day, whatever TIME_ZONE says.
AFTER_MIDNIGHT = datetime.datetime(2026, 3, 16, 0, 30, tzinfo=SH)


@pytest.mark.parametrize(
    ("until", "error"),
    [
        ("2026-03-15", "The end date cannot be in the past."),
        ("2028-03-17", "A manual tier ends within 24 months: 2028-03-16 at the latest."),
        ("2028-03-16", None),
        ("2026-03-16", None),
    ],
)
def test_the_form_and_the_service_have_one_rule_for_the_end_date(
    settings, time_machine, client, member, until, error
):
    settings.TIME_ZONE = "UTC"
    time_machine.move_to(AFTER_MIDNIGHT, tick=False)
    client.force_login(make_role_user("store_manager"))
    response = post(client, member, until)
    if error is None:
        assert response.status_code == 302
        assert member_tier(member=member).valid_until == datetime.date.fromisoformat(until)
    else:
        assert response.status_code == 400
        assert response.context["form"].errors["until"] == [error]
        assert not TierHistory.objects.exists()
