"""The member 360 page in the back office, and revealing a member's full phone."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from members.models import AuditEntry, ConsentEvent, Member
from members.numbers import damm_check_digit, member_qr_payload
from members.roles import ROLES
from members.services import Consents, member_enroll, member_set_consent
from points.services import purchase_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def member(store, staff_user):
    return member_enroll(
        phone="13812341234",
        name="张伟",
        email="zhangwei@example.com",
        gender=Member.Gender.MALE,
        birthday=datetime.date(1990, 5, 17),
        city="上海",
        channel=Member.Channel.STORE,
        store=store,
        consents=Consents(privacy_version="2026-01", sms=True, email=False),
        actor=staff_user,
    )


def detail_url(member) -> str:
    return reverse("staff:member-detail", args=[member.member_no])


def reveal_url(member) -> str:
    return reverse("staff:member-reveal-phone", args=[member.member_no])


def page(response) -> str:
    return response.content.decode()


# --- who may open it ---------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client, member):
    response = client.get(detail_url(member))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a_shopper_without_a_role_is_refused(client, member):
    client.force_login(UserFactory())
    assert client.get(detail_url(member)).status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_every_back_office_role_can_open_the_member_page(client, role_user, member, role):
    client.force_login(role_user(role))
    assert client.get(detail_url(member)).status_code == 200


def test_an_unknown_or_mistyped_member_number_is_not_found(staff_client, member):
    body = "81111111111"
    unknown = body + damm_check_digit(body)
    mistyped = member.member_no[:-1] + str((int(member.member_no[-1]) + 1) % 10)
    assert staff_client.get(f"/staff/members/{unknown}/").status_code == 404
    assert staff_client.get(f"/staff/members/{mistyped}/").status_code == 404


# --- what it shows -----------------------------------------------------------------------


def test_the_page_shows_the_profile_with_the_phone_masked(staff_client, member, store):
    html = page(staff_client.get(detail_url(member)))
    for fact in ("张伟", "zhangwei@example.com", "Male", "1990-05-17", "上海", store.name, "Store"):
        assert fact in html, fact
    grouped = " ".join(member.member_no[i : i + 4] for i in (0, 4, 8))
    assert grouped in html
    assert "138****1234" in html
    assert "13812341234" not in html
    assert "staff@example.com" in html  # who enrolled the member
    assert "Active" in html


def test_the_page_shows_the_card_qr_code(staff_client, member):
    html = page(staff_client.get(detail_url(member)))
    assert 'class="qr-code"' in html
    assert f"Member card {member.member_no}" in html
    assert member_qr_payload(member.member_no) not in html  # drawn, not printed


def test_the_page_shows_current_consent_and_its_history(staff_client, member, staff_user):
    member_set_consent(
        member=member,
        kind=ConsentEvent.Kind.EMAIL,
        granted=True,
        source=ConsentEvent.Source.PORTAL,
        actor=None,
    )
    html = page(staff_client.get(detail_url(member)))
    consent = html.split('id="consent-heading"', 1)[1].split("</section>", 1)[0]
    assert "Version 2026-01 accepted" in consent
    assert re.search(r'class="consent-sms">On<', consent)
    assert re.search(r'class="consent-email">On<', consent)
    history = consent.split("<tbody>", 1)[1]
    assert history.count("<tr>") == 4  # privacy notice, SMS, e-mail at the till; e-mail later
    assert "Member portal" in history
    assert "In store" in history
    # E-mail was refused at the till (never given, not withdrawn), then granted later.
    assert "Not given" in history
    assert "Withdrawn" not in history


def test_the_page_shows_the_audit_trail_with_readable_actions(staff_client, member):
    html = page(staff_client.get(detail_url(member)))
    trail = html.split('id="audit-heading"', 1)[1].split("</section>", 1)[0]
    assert "Member enrolled" in trail
    assert "staff@example.com" in trail


def test_tier_points_purchases_and_coupons_have_their_own_sections(staff_client, member):
    html = page(staff_client.get(detail_url(member)))
    for heading in ("Tier", "Points", "Recent purchases", "Coupons"):
        assert f">{heading}</h2>" in html, heading
    assert "Regular" in html


def test_the_page_has_one_tier_panel_and_shows_money_as_yuan_with_cents(
    staff_client, member, store, settings
):
    now = datetime.datetime.now(datetime.UTC)
    for receipt, amount in (("R1", "1943.80"), ("R2", "154.50")):
        purchase_record(
            member=member, store=store, receipt_no=receipt, occurred_at=now, amount=Decimal(amount)
        )
    for language in ("zh-hans", "en"):
        staff_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        html = page(staff_client.get(detail_url(member)))
        assert html.count('id="tier-heading"') == 1, language
        assert 'class="card member-tier"' in html
        assert "¥2,098.30" in html, language  # the last 12 months' spend on the tier panel
        assert "¥1,943.80" in html and "¥154.50" in html, language  # recent purchases
        assert not re.search(r"¥\d+\.\d{3,}", html), language  # no raw decimals
        assert not re.search(r"¥\d{4,}", html), language  # thousands are grouped


def test_the_page_takes_the_same_queries_however_long_the_history(
    staff_client, member, django_assert_max_num_queries, django_assert_num_queries
):
    staff_client.get(detail_url(member))  # the configuration each process keeps, read once
    # 8 for the page itself (the member read with their tier row, account and pending
    # points), the rest for what other apps add: points' panels, tiers' progress and
    # history, analytics' figures row, campaigns' messages.
    with django_assert_max_num_queries(19) as short:
        staff_client.get(detail_url(member))
    for granted in (False, True, False, True, False):
        member_set_consent(
            member=member,
            kind=ConsentEvent.Kind.SMS,
            granted=granted,
            source=ConsentEvent.Source.STORE,
            actor=UserFactory(),
        )
    with django_assert_num_queries(len(short.captured_queries)):
        html = page(staff_client.get(detail_url(member)))

    def table_rows(css_class: str) -> int:
        table = html.split(f'<table class="{css_class} ', 1)[1].split("</table>", 1)[0]
        return table.count("<tr>") - 1  # the heading row

    assert table_rows("consent-history") == 3 + 5  # at enrolment, then five SMS changes
    assert table_rows("audit-trail") == 1 + 5


def test_the_member_page_has_no_inline_styles_or_scripts(staff_client, member):
    html = page(staff_client.get(detail_url(member)))
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


# --- revealing the phone -----------------------------------------------------------------


def test_the_reveal_button_is_a_real_form_that_also_works_with_htmx(staff_client, member):
    html = page(staff_client.get(detail_url(member)))
    form = re.search(r"<form[^>]*reveal-phone[^>]*>", html).group(0)
    assert 'method="post"' in form
    assert f'action="{reveal_url(member)}"' in form
    assert f'hx-post="{reveal_url(member)}"' in form
    assert ">Reveal</button>" in html


def test_a_role_without_reveal_permission_sees_no_reveal_button(client, role_user, member):
    client.force_login(role_user("marketer"))
    html = page(client.get(detail_url(member)))
    assert "138****1234" in html
    assert ">Reveal</button>" not in html


def test_revealing_shows_the_full_phone_and_logs_who_saw_it(staff_client, member, staff_user):
    response = staff_client.post(reveal_url(member))
    html = page(response)
    assert response.status_code == 200
    assert "13812341234" in html
    assert "<html" in html  # without htmx: the whole member page
    entry = AuditEntry.objects.get(action="member.reveal_phone")
    assert entry.actor == staff_user
    assert entry.actor_label == "staff@example.com"
    assert entry.member == member


def test_revealing_with_htmx_returns_only_the_phone(staff_client, member):
    response = staff_client.post(reveal_url(member), headers=HTMX)
    html = page(response).strip()
    assert html.startswith('<span id="member-phone"')
    assert "13812341234" in html
    assert "<html" not in html
    assert AuditEntry.objects.filter(action="member.reveal_phone").count() == 1


def test_each_reveal_is_logged_and_shows_in_the_audit_trail(staff_client, member):
    staff_client.post(reveal_url(member))
    staff_client.post(reveal_url(member))
    assert AuditEntry.objects.filter(action="member.reveal_phone", member=member).count() == 2
    trail = page(staff_client.get(detail_url(member))).split('id="audit-heading"', 1)[1]
    assert trail.count("Full phone number shown") == 2


def test_revealing_needs_a_post(staff_client, member):
    assert staff_client.get(reveal_url(member)).status_code == 405
    assert not AuditEntry.objects.filter(action="member.reveal_phone").exists()


def test_a_marketer_cannot_reveal_a_phone(client, role_user, member):
    client.force_login(role_user("marketer"))
    response = client.post(reveal_url(member))
    assert response.status_code == 403
    assert "13812341234" not in page(response)
    assert not AuditEntry.objects.filter(action="member.reveal_phone").exists()


def test_an_anonymous_reveal_is_sent_to_log_in_and_logs_nothing(client, member):
    response = client.post(reveal_url(member))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert not AuditEntry.objects.filter(action="member.reveal_phone").exists()
