"""The points sections of the member 360 page, and the member's full points history page."""

from __future__ import annotations

import datetime
import re
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from members.roles import ROLES
from members.selectors import audit_action_label
from points.models import Reward
from points.services import points_adjust, purchase_record, return_record, reward_redeem
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english_and_frozen_clock(settings, time_machine):
    settings.LANGUAGE_CODE = "en"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def member(db):
    return MemberFactory(name="李娜")


@pytest.fixture
def reward(db):
    return Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal(10),
    )


def buy(member, store, receipt, amount, *, days_ago=1):
    return purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=NOW - datetime.timedelta(days=days_ago),
        now=NOW - datetime.timedelta(days=days_ago),
        amount=Decimal(amount),
    ).purchase


def detail(client, member) -> str:
    return client.get(reverse("staff:member-detail", args=[member.member_no])).content.decode()


def section(html: str, heading_id: str) -> str:
    return html.split(f'id="{heading_id}"', 1)[1].split("</section>", 1)[0]


def table_rows(html: str) -> int:
    return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>")


def test_the_balance_shows_available_pending_and_a_negative_balance(
    staff_client, member, store, staff_user
):
    buy(member, store, "BIG", 1000, days_ago=40)
    purchase_record(
        member=member,
        store=store,
        receipt_no="SPEND",
        occurred_at=NOW - datetime.timedelta(days=3),
        now=NOW - datetime.timedelta(days=3),
        amount=Decimal(10),
        points_to_use=1000,
    )
    return_record(
        store=store,
        receipt_no="RET",
        original_receipt_no="BIG",
        amount=Decimal(300),
        occurred_at=NOW - datetime.timedelta(days=2),
    )
    points = section(detail(staff_client, member), "points-heading")
    assert re.search(r'class="points-available">-300<', points)
    assert "−300" in points
    assert "must be earned back" in points


def test_the_points_section_has_buttons_for_this_member(staff_client, member):
    points = section(detail(staff_client, member), "points-heading")
    assert f"/staff/purchases/new/?member={member.member_no}" in points
    assert reverse("staff:points-adjust", args=[member.member_no]) in points


def test_the_auditor_sees_the_points_but_no_till_buttons(client, role_user, member, store):
    buy(member, store, "R1", 88)
    client.force_login(role_user("auditor"))
    points = section(detail(client, member), "points-heading")
    assert re.search(r'class="points-available">88<', points)
    assert "/staff/purchases/new/" not in points
    assert "/adjust/" not in points


def test_recent_purchases_show_their_returns(staff_client, member, store):
    buy(member, store, "R1", 200)
    return_record(
        store=store,
        receipt_no="RT1",
        original_receipt_no="R1",
        amount=Decimal(50),
        occurred_at=NOW - datetime.timedelta(hours=2),
    )
    purchases = section(detail(staff_client, member), "purchases-heading")
    assert "R1" in purchases
    assert "¥200.00" in purchases
    assert "returned ¥50.00 (RT1)" in purchases
    assert "−50" in purchases


def test_the_ledger_history_shows_the_latest_20_and_links_to_the_full_history(
    staff_client, member, store
):
    for n in range(25):
        buy(member, store, f"R{n:02d}", 10 + n, days_ago=30 - n)
    ledger = section(detail(staff_client, member), "ledger-heading")
    assert table_rows(ledger) == 20
    assert "+34" in ledger  # the latest purchase first
    assert "+10" not in ledger  # the oldest is on the full page
    full_url = reverse("staff:member-ledger", args=[member.member_no])
    assert full_url in ledger
    assert "Full points history" in ledger


def test_lots_show_earned_points_remaining_and_last_day(staff_client, member, store):
    buy(member, store, "R1", 300, days_ago=10)
    purchase_record(
        member=member,
        store=store,
        receipt_no="SPEND",
        occurred_at=NOW - datetime.timedelta(days=1),
        now=NOW - datetime.timedelta(days=1),
        amount=Decimal(100),
        points_to_use=100,
    )
    lots = section(detail(staff_client, member), "lots-heading")
    # Earned 2026-03-05: 300, 100 spent; expires at the end of March 2027.
    assert re.search(r"2026-03-05</time></td>\s*<td[^>]*>300</td>\s*<td[^>]*>200</td>", lots)
    assert "2027-03-31" in lots


def test_coupons_list_the_members_coupons_with_status(staff_client, member, store, reward):
    buy(member, store, "R1", 1500)
    coupon = reward_redeem(member=member, reward=reward, idempotency_key="k1").coupon
    coupons = section(detail(staff_client, member), "coupons-heading")
    assert coupon.code in coupons
    assert "¥10 off" in coupons
    assert ">Valid<" in coupons


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_points_sections(client, role_user, member, role):
    client.force_login(role_user(role))
    html = detail(client, member)
    for heading in ("Points", "Recent purchases", "Coupons", "Points history", "Points lots"):
        assert f">{heading}</h2>" in html, heading
    assert html.count('id="points-heading"') == 1  # the placeholder is gone


def test_the_audit_trail_names_points_actions(staff_client, member, store, staff_user):
    points_adjust(
        member=member, points=20, reason="goodwill", actor=staff_user, idempotency_key="a1"
    )
    assert audit_action_label("purchase.record") == "Purchase recorded"
    assert audit_action_label("reward.void") == "Redemption voided, points refunded"
    trail = section(detail(staff_client, member), "audit-heading")
    assert "Points adjusted" in trail


def test_the_360_page_takes_the_same_queries_however_long_the_history(
    staff_client,
    member,
    store,
    reward,
    staff_user,
    django_assert_max_num_queries,
    django_assert_num_queries,
):
    buy(member, store, "R0", 3000)
    detail(staff_client, member)  # the configuration each process keeps, read once
    # The member comes with their tier row, account and pending points; the panels read
    # their own rows (one of them the staff member's stores, for the purchases); the tier
    # panel two sums and the history; analytics the figures row; campaigns the messages.
    with django_assert_max_num_queries(21) as short:
        detail(staff_client, member)
    for n in range(1, 15):
        buy(member, store, f"R{n}", 100 + n, days_ago=20 - n)
        return_record(
            store=store,
            receipt_no=f"RT{n}",
            original_receipt_no=f"R{n}",
            amount=Decimal(10),
            occurred_at=NOW - datetime.timedelta(hours=n),
        )
    for n in range(3):
        reward_redeem(member=member, reward=reward, idempotency_key=f"redeem-{n}")
    points_adjust(member=member, points=5, reason="x", actor=staff_user, idempotency_key="z")
    with django_assert_num_queries(len(short.captured_queries)):
        html = detail(staff_client, member)
    assert table_rows(section(html, "purchases-heading")) == 10
    assert table_rows(section(html, "coupons-heading")) == 3
    assert table_rows(section(html, "ledger-heading")) == 20


def test_the_360_page_has_no_inline_styles_or_scripts(client, role_user, member, store, reward):
    buy(member, store, "R1", 1500)
    reward_redeem(member=member, reward=reward, idempotency_key="k1")
    client.force_login(role_user("store_manager"))
    html = detail(client, member)
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


# --- the full history page -----------------------------------------------------------------


def ledger_url(member) -> str:
    return reverse("staff:member-ledger", args=[member.member_no])


def test_the_history_url(member):
    assert ledger_url(member) == f"/staff/members/{member.member_no}/points/"


@pytest.mark.parametrize("role", ROLES)
def test_every_back_office_role_may_read_the_history(client, role_user, role, member):
    client.force_login(role_user(role))
    assert client.get(ledger_url(member)).status_code == 200


def test_a_shopper_may_not(client, member):
    client.force_login(UserFactory())
    assert client.get(ledger_url(member)).status_code == 403


def test_the_history_is_paginated_and_filters_by_kind(staff_client, member, store, staff_user):
    for n in range(55):
        buy(member, store, f"R{n:02d}", 10, days_ago=60 - n)
    points_adjust(
        member=member, points=-7, reason="typo", actor=staff_user, idempotency_key=str(uuid.uuid4())
    )
    first = staff_client.get(ledger_url(member)).content.decode()
    assert table_rows(first) == 50
    assert "Page 1 of 2" in first
    assert "-7" in first
    second = staff_client.get(ledger_url(member), {"page": 2}).content.decode()
    assert table_rows(second) == 6
    adjusted = staff_client.get(ledger_url(member), {"kind": "adjust"}).content.decode()
    assert table_rows(adjusted) == 1
    assert "typo" in adjusted
    assert staff_user.email in adjusted


def test_the_history_filter_answers_htmx_with_the_table_only(staff_client, member, store):
    buy(member, store, "R1", 10)
    html = staff_client.get(
        ledger_url(member), {"kind": "earn"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert html.strip().startswith('<div id="ledger-history"')
    assert table_rows(html) == 1
