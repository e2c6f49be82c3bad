"""Adjusting a member's points by hand: reason required, a confirmation showing the new
balance, limits per role (store staff per adjustment and per member per day, managers per
adjustment, administrators above that only with a second administrator), audited."""

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
from points.models import LedgerTransaction, PointsAdjustment
from points.selectors import points_balance
from points.services import (
    AdjustmentDecisionRefused,
    AdjustmentLimitExceeded,
    ApprovalRequired,
    points_adjust,
    points_adjust_approve,
    points_adjust_request,
    purchase_record,
)
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
    """The confirmed (second) submit; `confirm=""` makes it the first, which only asks."""
    return {
        "points": "100",
        "reason": "Till was down",
        "idempotency_key": str(uuid.uuid4()),
        "confirm": "1",
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
    assert "Up to 500 points per adjustment, and 2000 per member per day." in first


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
def test_managers_and_administrators_adjust_up_to_100000(client, role_user, member, role):
    client.force_login(role_user(role))
    assert "Up to 100000 points per adjustment." in page(client.get(url(member)))
    assert client.post(url(member), form_data(points="5000")).status_code == 302
    assert client.post(url(member), form_data(points="100000")).status_code == 302
    assert points_balance(member=member).available == 105300


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


# --- The confirmation step ----------------------------------------------------------------


def test_the_first_submit_shows_the_new_balance_and_posts_nothing(staff_client, member):
    data = form_data(points="-120", confirm="")
    response = staff_client.post(url(member), data)
    assert response.status_code == 200
    html = page(response)
    assert "Balance 300 → 180, confirm?" in html
    assert f'name="idempotency_key" value="{data["idempotency_key"]}"' in html
    assert '<button type="submit" name="confirm" value="1">Confirm the adjustment</button>' in html
    assert adjustments() == []
    # The confirmation's submit carries the same values and key: it posts, once.
    confirmed = {**data, "confirm": "1"}
    assert staff_client.post(url(member), confirmed).status_code == 302
    assert staff_client.post(url(member), confirmed).status_code == 302
    assert adjustments() == [(-120, "Till was down")]


def test_the_first_submit_already_says_what_is_refused(staff_client, member):
    response = staff_client.post(url(member), form_data(points="-400", confirm=""))
    assert response.status_code == 400
    assert "This needs 400 points; the member has 300 available." in page(response)
    assert "confirm?" not in page(response)


def test_change_it_goes_back_to_the_filled_form(staff_client, member):
    response = staff_client.post(url(member), form_data(points="70", confirm="", edit="1"))
    assert response.status_code == 200
    assert 'name="points" value="70"' in page(response)
    assert adjustments() == []


# --- Store staff: per member per day ------------------------------------------------------


def test_store_staff_adjust_at_most_2000_per_member_per_day(client, role_user, member):
    # Four cashiers, 500 each: the member's day is full, whoever asks next.
    for _ in range(4):
        client.force_login(role_user("store_staff"))
        assert client.post(url(member), form_data(points="500")).status_code == 302
    client.force_login(role_user("store_staff"))
    response = client.post(url(member), form_data(points="-1", confirm=""))
    assert response.status_code == 400
    assert (
        "Store staff can adjust at most 2000 points per member per day (added and taken away "
        "together); 2000 are used today. Ask a store manager." in page(response)
    )
    assert len(adjustments()) == 4


def test_points_taken_away_count_towards_the_day_too(staff_client, member):
    assert staff_client.post(url(member), form_data(points="-300")).status_code == 302
    for _ in range(3):
        assert staff_client.post(url(member), form_data(points="500")).status_code == 302
    response = staff_client.post(url(member), form_data(points="201"))
    assert response.status_code == 400
    assert "1800 are used today" in page(response)
    assert staff_client.post(url(member), form_data(points="200")).status_code == 302


def test_the_day_is_the_business_day_in_shanghai(staff_client, member, time_machine):
    for _ in range(4):
        staff_client.post(url(member), form_data(points="500"))
    time_machine.move_to(datetime.datetime(2026, 3, 15, 23, 59, tzinfo=SH), tick=False)
    assert staff_client.post(url(member), form_data(points="1")).status_code == 400
    time_machine.move_to(datetime.datetime(2026, 3, 16, 0, 0, tzinfo=SH), tick=False)
    assert staff_client.post(url(member), form_data(points="500")).status_code == 302


def test_another_member_has_a_day_of_their_own(staff_client, member, store):
    other = MemberFactory()
    for _ in range(4):
        staff_client.post(url(member), form_data(points="500"))
    assert staff_client.post(url(other), form_data(points="500")).status_code == 302


def test_a_managers_adjustment_does_not_use_the_store_staff_day(
    client, role_user, member, staff_client
):
    client.force_login(role_user("store_manager"))
    assert client.post(url(member), form_data(points="5000")).status_code == 302
    for _ in range(4):
        assert staff_client.post(url(member), form_data(points="500")).status_code == 302


def test_the_limits_are_settings(settings, staff_client, member):
    settings.POINTS_ADJUST_STAFF_MAX = 50
    settings.POINTS_ADJUST_STAFF_DAILY_MAX = 60
    response = staff_client.post(url(member), form_data(points="51"))
    assert "Store staff can adjust up to 50 points at a time." in page(response)
    assert staff_client.post(url(member), form_data(points="50")).status_code == 302
    assert staff_client.post(url(member), form_data(points="11")).status_code == 400
    assert adjustments() == [(50, "Till was down")]


def test_the_audit_entry_names_the_limit(staff_client, member, staff_user):
    staff_client.post(url(member), form_data(points="40"))
    entry = AuditEntry.objects.get(action="points.adjust")
    assert entry.details["authority"] == "staff"
    assert entry.details["limit"] == 500


# --- Managers and administrators above 100,000 --------------------------------------------


def test_managers_cannot_go_above_100000(client, role_user, member):
    client.force_login(role_user("store_manager"))
    response = client.post(url(member), form_data(points="100001"))
    assert response.status_code == 400
    assert "Store managers can adjust up to 100000 points at a time. Ask an administrator" in page(
        response
    )
    assert adjustments() == []


def approvals_url() -> str:
    return reverse("staff:adjustment-approvals")


def test_an_administrators_large_adjustment_waits_for_a_second_administrator(
    client, role_user, member
):
    requester = role_user("administrator")
    client.force_login(requester)
    first = client.post(url(member), form_data(points="150000", confirm=""))
    assert "Balance 300 → 150300, confirm?" in page(first)
    assert "it is sent to a second administrator" in page(first)
    data = form_data(points="150000", reason="Lost loyalty card migration")
    response = client.post(url(member), data, follow=True)
    assert "sent for approval" in page(response)
    assert adjustments() == []  # nothing posted yet
    assert points_balance(member=member).available == 300
    adjustment = PointsAdjustment.objects.get()
    assert adjustment.status == "pending"
    assert AuditEntry.objects.filter(action="points.adjust_request").count() == 1
    # The requester sees it but cannot approve it, neither on the page nor by posting.
    listing = page(client.get(approvals_url()))
    assert "Your own request: another administrator must approve or reject it." in listing
    approve = reverse("staff:adjustment-approve", args=[adjustment.pk])
    refused = client.post(approve, follow=True)
    assert "A second administrator must approve or reject this adjustment" in page(refused)
    assert adjustments() == []
    # A double-submitted request is still one request.
    client.post(url(member), data)
    assert PointsAdjustment.objects.count() == 1

    second = role_user("administrator")
    client.force_login(second)
    listing = page(client.get(approvals_url()))
    assert "300 → 150300" in listing
    assert "Approve and post 150000 points" in listing
    response = client.post(approve, follow=True)
    assert "Adjustment approved and posted: +150000 points" in page(response)
    assert client.post(approve).status_code == 302  # approving again posts nothing more
    assert adjustments() == [(150000, "Lost loyalty card migration")]
    assert points_balance(member=member).available == 150300
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.decided_by) == ("posted", second)
    entry = AuditEntry.objects.get(action="points.adjust_approve")
    assert entry.actor == second and entry.details["requested_by"] == str(requester)
    trail = page(client.get(reverse("staff:member-detail", args=[member.member_no])))
    assert "Points adjustment sent for approval" in trail
    assert "Points adjustment approved and posted" in trail


def test_a_rejected_request_posts_nothing(client, role_user, member):
    client.force_login(role_user("administrator"))
    client.post(url(member), form_data(points="200000"))
    adjustment = PointsAdjustment.objects.get()
    client.force_login(role_user("administrator"))
    response = client.post(
        reverse("staff:adjustment-reject", args=[adjustment.pk]),
        {"note": "No evidence"},
        follow=True,
    )
    assert "Adjustment rejected: nothing was posted" in page(response)
    assert client.post(reverse("staff:adjustment-approve", args=[adjustment.pk])).status_code == 302
    assert adjustments() == []
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.decision_note) == ("rejected", "No evidence")
    assert AuditEntry.objects.filter(action="points.adjust_reject").count() == 1


@pytest.mark.parametrize("role", ["store_staff", "store_manager", "auditor"])
def test_only_administrators_see_the_approvals(client, role_user, role):
    client.force_login(role_user(role))
    assert client.get(approvals_url()).status_code == 403


def test_the_service_refuses_the_requester_as_approver(member, role_user):
    admin = role_user("administrator")
    adjustment = points_adjust_request(
        member=member, points=100_001, reason="x", actor=admin, idempotency_key="k1"
    )
    with pytest.raises(AdjustmentDecisionRefused):
        points_adjust_approve(adjustment=adjustment, actor=admin)
    with pytest.raises(ApprovalRequired):
        points_adjust(member=member, points=100_001, reason="x", actor=admin, idempotency_key="k2")
    assert adjustments() == []


# --- The absolute ceiling (POINTS_ADJUST_MAX) ---------------------------------------------


@pytest.mark.parametrize("points", [str(10**30), str(-(10**30)), "100000001"])
def test_an_absurd_figure_is_a_form_error_not_a_crash(client, role_user, member, points):
    client.force_login(role_user("administrator"))
    response = client.post(url(member), form_data(points=points))
    assert response.status_code == 400
    errors = response.context["form"].errors["points"]
    assert any("100000000" in error for error in errors)
    assert adjustments() == []
    assert not PointsAdjustment.objects.exists()


def test_the_ceiling_is_a_setting_and_an_administrator_may_ask_up_to_it(
    settings, client, role_user, member
):
    settings.POINTS_ADJUST_MAX = 200_000
    client.force_login(role_user("administrator"))
    assert client.post(url(member), form_data(points="200001")).status_code == 400
    assert client.post(url(member), form_data(points="200000")).status_code == 302
    assert PointsAdjustment.objects.get().points == 200_000


def test_the_service_refuses_above_the_ceiling_even_for_an_administrator(
    settings, member, role_user
):
    admin = role_user("administrator")
    for points in (settings.POINTS_ADJUST_MAX + 1, 10**30):
        with pytest.raises(AdjustmentLimitExceeded) as refused:
            points_adjust_request(
                member=member, points=points, reason="x", actor=admin, idempotency_key="k"
            )
        assert not isinstance(refused.value, ApprovalRequired)
        assert refused.value.ceiling and refused.value.limit == 100_000_000
    assert not PointsAdjustment.objects.exists()


def test_the_role_limits_come_from_the_service_and_show_on_the_points_field(staff_client, member):
    # The form itself checks only 0 and the ceiling; what the role allows is the service's.
    from points.staff_forms import PointsAdjustForm

    form = PointsAdjustForm(form_data(points="501"), user=None)
    assert form.is_valid(), form.errors
    response = staff_client.post(url(member), form_data(points="501", confirm=""))
    assert response.status_code == 400
    assert response.context["form"].errors["points"] == [
        "Store staff can adjust up to 500 points at a time. Ask a store manager for a larger "
        "adjustment."
    ]
