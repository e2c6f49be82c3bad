"""Adjusting a member's points by hand: reason required, store staff limited, audited."""

from __future__ import annotations

import datetime
import re
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from members.models import AuditEntry
from members.roles import ROLES
from points.models import LedgerTransaction
from points.selectors import points_balance
from points.services import purchase_record
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english_and_frozen_clock(settings, time_machine):
    settings.LANGUAGE_CODE = "en"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def member(store):
    member = MemberFactory(name="李娜")
    purchase_record(
        member=member,
        store=store,
        receipt_no="OPENING",
        occurred_at=NOW - datetime.timedelta(days=1),
        amount=Decimal(300),
    )
    return member


def url(member) -> str:
    return reverse("staff:points-adjust", args=[member.member_no])


def form_data(**change):
    return {
        "points": "100",
        "reason": "Till was down",
        "idempotency_key": str(uuid.uuid4()),
        **change,
    }


def page(response) -> str:
    return response.content.decode()


def adjustments():
    return list(
        LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.ADJUST).values_list(
            "member_amount", "reason"
        )
    )


def test_the_url(member):
    assert url(member) == f"/staff/members/{member.member_no}/adjust/"


@pytest.mark.parametrize("role", ROLES)
def test_only_till_roles_may_adjust(client, role_user, role, member):
    client.force_login(role_user(role))
    expected = 200 if role in ("store_staff", "store_manager", "administrator") else 403
    assert client.get(url(member)).status_code == expected
    assert client.post(url(member), form_data()).status_code in (expected, 302)
    assert len(adjustments()) == (1 if expected == 200 else 0)


def test_the_form_shows_the_balance_and_carries_a_fresh_key(staff_client, member):
    first = page(staff_client.get(url(member)))
    second = page(staff_client.get(url(member)))
    assert 'class="points-available">300<' in first
    key = re.search(r'name="idempotency_key" value="([^"]+)"', first).group(1)
    assert uuid.UUID(key)
    assert key not in second
    assert "Up to 500 points per adjustment." in first


def test_an_adjustment_moves_points_and_is_audited(staff_client, member, staff_user):
    response = staff_client.post(url(member), form_data(points="-120"), follow=True)
    assert "Points adjusted: -120 (Till was down)" in page(response)
    assert adjustments() == [(-120, "Till was down")]
    assert points_balance(member=member).available == 180
    entry = AuditEntry.objects.get(action="points.adjust")
    assert entry.actor == staff_user
    assert entry.member == member
    assert "Points adjusted" in page(response)  # the 360 audit trail names it


def test_a_double_submit_adjusts_once(staff_client, member):
    data = form_data(points="50")
    staff_client.post(url(member), data)
    response = staff_client.post(url(member), data)
    assert response.status_code == 302
    assert adjustments() == [(50, "Till was down")]
    assert points_balance(member=member).available == 350


def test_a_reason_is_required(staff_client, member):
    response = staff_client.post(url(member), form_data(reason="   "))
    assert response.status_code == 400
    assert "Give a reason: it is kept in the audit log." in page(response)
    assert adjustments() == []


def test_zero_is_not_an_adjustment(staff_client, member):
    response = staff_client.post(url(member), form_data(points="0"))
    assert response.status_code == 400
    assert "Enter the points to add or take away (not 0)." in page(response)


@pytest.mark.parametrize("points", ["501", "-501", "5000"])
def test_store_staff_are_limited_to_500_per_adjustment(staff_client, member, points):
    response = staff_client.post(url(member), form_data(points=points))
    assert response.status_code == 400
    assert "Store staff can adjust up to 500 points at a time." in page(response)
    assert adjustments() == []


def test_store_staff_may_adjust_exactly_500(staff_client, member):
    assert staff_client.post(url(member), form_data(points="500")).status_code == 302
    assert adjustments() == [(500, "Till was down")]


@pytest.mark.parametrize("role", ["store_manager", "administrator"])
def test_managers_and_administrators_are_not_limited(client, role_user, member, role):
    client.force_login(role_user(role))
    assert "Up to 500" not in page(client.get(url(member)))
    assert client.post(url(member), form_data(points="5000")).status_code == 302
    assert points_balance(member=member).available == 5300


def test_taking_more_than_the_balance_is_refused(staff_client, member):
    response = staff_client.post(url(member), form_data(points="-400"))
    assert response.status_code == 400
    assert "This needs 400 points; the member has 300 available." in page(response)
    assert adjustments() == []


def test_a_lost_key_is_a_clear_error(staff_client, member):
    response = staff_client.post(url(member), form_data(idempotency_key="not-a-uuid"))
    assert response.status_code == 400
    assert "This form is out of date: reload the page" in page(response)
    assert not adjustments()
