"""The member portal: card, profile, consent, privacy notice, data export, closing."""

from __future__ import annotations

import datetime
import json
import re

import barcode
import pytest
import segno
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from members.models import AuditEntry, ConsentEvent, Member, User
from members.numbers import member_qr_payload
from tests.factories import MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "demo-pass-123"


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def member(db):
    user = UserFactory(email="li@example.com", phone="+8613800000001", phone_verified=True)
    return MemberFactory(
        user=user, phone=user.phone, name="李小龙", email="li@example.com", member_no="812345678908"
    )


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


def page(response) -> str:
    return response.content.decode()


def qr_cells(svg: str) -> set[tuple[int, int]]:
    """The dark modules of a segno SVG path (M x y, then h runs and relative m moves)."""
    path = re.search(r'<path[^>]* stroke="#000" d="([^"]+)"', svg.split("qr-code", 1)[1]).group(1)
    cells, x, y = set(), 0.0, 0.0
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            cells.update((int(x) + i, int(y)) for i in range(int(a)))
            x += float(a)
    return cells


def barcode_modules(svg: str) -> str:
    """Read the bars of our Code 128 SVG back into a 1/0 module string."""
    svg = svg.split("barcode-code128", 1)[1]
    quiet = 10
    bars = re.findall(r"M(\d+) 0h(\d+)v", svg)
    end = max(int(x) + int(w) for x, w in bars)
    modules = ["0"] * (end - quiet)
    for x, w in bars:
        for i in range(int(x), int(x) + int(w)):
            modules[i - quiet] = "1"
    return "".join(modules)


# --- home -----------------------------------------------------------------------------------


def test_anonymous_visitors_see_a_welcome_page_with_join_and_log_in(client):
    html = page(client.get("/"))
    assert "Welcome to 会员 Loyalty" in html
    assert f'href="{reverse("account_signup")}"' in html
    assert f'href="{reverse("account_login")}"' in html


def test_the_card_shows_name_grouped_number_tier_and_points(member_client):
    html = page(member_client.get("/"))
    assert "李小龙" in html
    assert "8123 4567 8908" in html
    assert "Regular" in html
    assert re.search(r'class="points-balance">0<', html)


def test_the_qr_code_carries_the_member_qr_payload(member_client, member):
    html = page(member_client.get("/"))
    expected = segno.make(member_qr_payload(member.member_no), error="m", micro=False)
    assert not expected.is_micro  # a full QR code: Micro QR is unreadable by most phones
    border = 4
    dark = {
        (col + border, row + border)
        for row, line in enumerate(expected.matrix)
        for col, value in enumerate(line)
        if value
    }
    assert qr_cells(html) == dark


def test_the_barcode_is_code_128_of_the_member_number(member_client, member):
    html = page(member_client.get("/"))
    expected = barcode.get("code128", member.member_no).build()[0]
    assert barcode_modules(html) == expected.rstrip("0")


def test_portal_pages_have_no_inline_styles_or_scripts(member_client):
    for name in ("home", "profile", "consent", "privacy-notice", "account-close", "referral"):
        html = page(member_client.get(reverse(f"portal:{name}")))
        assert " style=" not in html, name
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), name


def test_a_login_without_a_member_gets_a_friendly_page_everywhere(client, staff_user):
    client.force_login(staff_user)
    for name in ("home", "profile", "consent", "data-export", "account-close"):
        response = client.get(reverse(f"portal:{name}"))
        assert response.status_code == 200, name
        assert "This account has no member card" in page(response), name


def test_member_pages_need_a_login(client):
    for name in ("profile", "consent", "data-export", "account-close"):
        response = client.get(reverse(f"portal:{name}"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


# --- profile --------------------------------------------------------------------------------


def test_the_profile_shows_the_phone_but_offers_no_way_to_change_it(member_client):
    html = page(member_client.get(reverse("portal:profile")))
    assert "+8613800000001" in html
    assert "please ask at a store" in html
    assert 'name="phone"' not in html
    for field in ("name", "email", "gender", "birthday", "city", "home_store"):
        assert f'<label for="id_{field}">' in html


def test_a_member_updates_their_profile(member_client, member):
    store = StoreFactory(code="BJ001", name="北京王府井店")
    response = member_client.post(
        reverse("portal:profile"),
        {
            "name": " 李龙 ",
            "email": "Long@Example.com",
            "gender": "M",
            "birthday": "1990-05-17",
            "city": "北京",
            "home_store": store.pk,
        },
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.name, member.email, member.gender, member.city) == (
        "李龙",
        "long@example.com",
        "M",
        "北京",
    )
    assert member.birthday == datetime.date(1990, 5, 17)
    assert member.home_store == store
    assert member.phone == "+8613800000001"
    entry = AuditEntry.objects.get(action="member.update_profile")
    assert entry.actor == member.user
    assert "Your profile has been saved." in page(member_client.get(response["Location"]))


def test_a_too_old_birthday_says_it_is_too_early_not_in_the_future(member_client, member, settings):
    member_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    valid = {"name": "李小龙", "email": "", "gender": "", "city": "", "home_store": ""}
    too_old = (timezone.localdate() - datetime.timedelta(days=121 * 366)).isoformat()
    for birthday in ("1899-12-31", too_old):
        html = page(member_client.post(reverse("portal:profile"), {**valid, "birthday": birthday}))
        assert "出生日期太早" in html, birthday
        assert "不能是未来日期" not in html, birthday
    html = page(member_client.post(reverse("portal:profile"), {**valid, "birthday": "2999-01-01"}))
    assert "不能是未来日期" in html
    assert "出生日期太早" not in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "  "}, "Enter your name."),
        ({"email": "not-an-email"}, "Enter a valid email address."),
        ({"birthday": "2999-01-01"}, "Enter a real birthday (not in the future)."),
        ({"birthday": "1899-12-31"}, "This birthday is too early"),
        ({"birthday": "17/05/1990x"}, "Enter a valid date."),
        ({"gender": "X"}, "Select a valid choice."),
        ({"home_store": "999999"}, "Select a valid choice."),
    ],
)
def test_bad_profile_input_shows_errors_and_writes_nothing(member_client, member, data, message):
    before = Member.objects.filter(pk=member.pk).values().get()
    valid = {
        "name": "李小龙",
        "email": "",
        "gender": "",
        "birthday": "",
        "city": "",
        "home_store": "",
    }

    response = member_client.post(reverse("portal:profile"), {**valid, **data})

    assert response.status_code == 200
    assert message in page(response)
    assert Member.objects.filter(pk=member.pk).values().get() == before
    assert not AuditEntry.objects.exists()


def test_an_email_another_member_has_is_refused_on_the_profile(member_client, member):
    MemberFactory(email="taken@example.com")
    response = member_client.post(
        reverse("portal:profile"), {"name": "李小龙", "email": "taken@example.com"}
    )
    assert "This e-mail is already used by another member." in page(response)
    member.refresh_from_db()
    assert member.email == "li@example.com"


# --- consent --------------------------------------------------------------------------------


def test_a_member_switches_sms_offers_on_and_off_and_sees_the_history(member_client, member):
    url = reverse("portal:consent")
    assert member_client.post(url, {"kind": "sms", "granted": "1"}).status_code == 302
    member_client.post(url, {"kind": "sms", "granted": "0"})

    member.refresh_from_db()
    assert member.consent_sms is False
    events = list(member.consent_events.order_by("id").values_list("kind", "granted", "source"))
    assert events == [("sms", True, "portal"), ("sms", False, "portal")]

    html = page(member_client.get(url))
    rows = re.findall(r"<tr>\s*<td[ >](.*?)</tr>", html, re.S)
    assert len(rows) == 2
    assert "Withdrawn" in rows[0] and "Member portal" in rows[0]  # newest first
    assert "Granted" in rows[1]
    assert "Turn on SMS marketing" in html


def test_the_history_shows_the_privacy_notice_version_accepted(member_client, member):
    ConsentEvent.objects.create(
        member=member, kind="privacy_notice", granted=True, version="2026-01", source="signup"
    )
    html = page(member_client.get(reverse("portal:consent")))
    row = re.findall(r"<tr>\s*<td[ >](.*?)</tr>", html, re.S)[0]
    assert "Privacy notice" in row and "Accepted" in row and "2026-01" in row
    assert "Online sign-up" in row


def test_an_htmx_toggle_returns_only_the_consent_panel(member_client, member):
    response = member_client.post(
        reverse("portal:consent"), {"kind": "email", "granted": "1"}, headers={"HX-Request": "true"}
    )
    html = page(response)
    assert response.status_code == 200
    assert "<html" not in html
    assert html.strip().startswith('<div id="consent-panel">')
    assert "Turn off E-mail marketing" in html
    member.refresh_from_db()
    assert member.consent_email is True


def test_a_garbled_consent_post_changes_nothing(member_client, member):
    response = member_client.post(
        reverse("portal:consent"), {"kind": "privacy_notice", "granted": "0"}
    )
    assert response.status_code == 400
    assert "nothing was changed" in page(response)
    assert not ConsentEvent.objects.exists()


# --- privacy notice and export --------------------------------------------------------------


def test_the_privacy_notice_is_public_and_shows_its_version(client):
    html = page(client.get(reverse("portal:privacy-notice")))
    assert "Privacy notice" in html
    assert f"Version {settings.PRIVACY_NOTICE_VERSION}" in html


def test_the_data_export_downloads_my_data_as_json(member_client, member):
    member_client.post(reverse("portal:consent"), {"kind": "sms", "granted": "1"})

    response = member_client.get(reverse("portal:data-export"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="member-{member.member_no}-'
    )
    data = json.loads(response.content)["member"]
    assert data["member_no"] == member.member_no
    assert data["name"] == "李小龙"
    assert data["phone"] == "+8613800000001"
    assert data["marketing_consent"] == {"sms": True, "email": False}
    assert [event["kind"] for event in data["consent_history"]] == ["sms"]
    assert "李小龙" in response.content.decode()  # readable, not \\u-escaped


# --- closing --------------------------------------------------------------------------------


def test_the_close_page_explains_what_happens_and_asks_for_confirmation(member_client):
    html = page(member_client.get(reverse("portal:account-close")))
    assert "What happens when you close your account" in html
    assert 'name="password"' in html and 'name="confirm"' in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"password": PASSWORD}, "Tick the box to confirm"),
        ({"confirm": "on", "password": "wrong"}, "That is not your password."),
    ],
)
def test_closing_without_confirmation_or_with_a_wrong_password_does_nothing(
    member_client, member, data, message
):
    response = member_client.post(reverse("portal:account-close"), data)
    assert message in page(response)
    member.refresh_from_db()
    assert member.status == Member.Status.ACTIVE
    assert member.name == "李小龙"


def test_closing_anonymises_logs_out_and_frees_the_phone_for_a_new_signup(
    member_client, member, sms_outbox
):
    number = member.member_no
    response = member_client.post(
        reverse("portal:account-close"), {"confirm": "on", "password": PASSWORD}, follow=True
    )

    assert response.redirect_chain[-1][0] == reverse("portal:home")
    assert "Your account has been closed" in page(response)
    assert response.wsgi_request.user.is_anonymous
    member.refresh_from_db()
    assert member.member_no == number
    assert member.status == Member.Status.ANONYMISED
    assert (member.name, member.phone, member.email) == ("", None, None)

    # The old phone can join again, as a new member.
    member_client.post(
        "/accounts/signup/",
        {
            "phone": "13800000001",
            "name": "新会员",
            "password1": "another-long-pass-9",
            "password2": "another-long-pass-9",
            "accept_privacy": "on",
        },
    )
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1].text).group(1)
    member_client.post("/accounts/phone/verify/", {"code": code})
    again = Member.objects.get(phone="+8613800000001")
    assert again.pk != member.pk
    assert again.member_no != number
    assert User.objects.filter(phone="+8613800000001").count() == 1


def test_allauths_change_phone_page_sends_members_to_a_store_and_a_forced_change_is_refused(
    member_client, member, sms_outbox
):
    html = page(member_client.get(reverse("account_change_phone")))
    assert "To change your mobile number, please ask at a store." in html
    assert 'name="phone"' not in html

    # Going around the page: confirm the password, post a new number, enter its code.
    member_client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    member_client.post(reverse("account_change_phone"), {"phone": "13900000009"})
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1].text).group(1)
    response = member_client.post(reverse("account_verify_phone"), {"code": code})

    assert response.status_code == 403
    assert "please ask at a store" in page(response)
    member.refresh_from_db()
    member.user.refresh_from_db()
    assert member.phone == member.user.phone == "+8613800000001"


# --- referral ---------------------------------------------------------------------------------


def test_the_home_page_shows_the_referral_code_and_links_to_the_invite_page(member_client, member):
    html = page(member_client.get("/"))
    assert f"Your referral code: {member.referral_code}" in html
    assert f'href="{reverse("portal:referral")}"' in html


def test_the_invite_page_shows_the_code_the_sign_up_link_and_its_qr_code(member_client, member):
    html = page(member_client.get(reverse("portal:referral")))

    link = f"http://testserver/accounts/signup/?ref={member.referral_code}"
    assert f'<p class="referral-code">{member.referral_code}</p>' in html
    assert f'<a href="{link}"><code>{link}</code></a>' in html
    expected = segno.make(link, error="m", micro=False)
    dark = {
        (col + 4, row + 4)
        for row, line in enumerate(expected.matrix)
        for col, value in enumerate(line)
        if value
    }
    assert qr_cells(html) == dark
    assert "0 friends have joined with your code so far." in html


def test_the_invite_page_counts_the_friends_who_joined_with_the_code(member_client, member):
    MemberFactory(referrer=member)

    html = page(member_client.get(reverse("portal:referral")))

    assert "1 friend has joined with your code so far." in html


def test_the_invite_page_needs_a_login(client):
    response = client.get(reverse("portal:referral"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
