"""Logging in with phone or e-mail, resetting a password, and the log-in rate limits."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from tests.conftest import make_role_user
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN_URL = "/accounts/login/"
PASSWORD = "demo-pass-123"
THROTTLED = "Too many failed login attempts. Try again later."


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def shopper(db):
    user = UserFactory(email="member@example.com", phone="+8613800000001", phone_verified=True)
    MemberFactory(user=user, phone=user.phone, name="会员小李", email=user.email)
    return user


@pytest.fixture
def phone_only_shopper(db):
    user = UserFactory(email=None, phone="+8613800000002", phone_verified=True)
    MemberFactory(user=user, phone=user.phone, name="手机会员", email=None)
    return user


def log_in(client, login: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN_URL, {"login": login, "password": password, **extra})


@pytest.mark.parametrize(
    "typed", ["member@example.com", "13800000001", "+86 138 0000 0001", "+8613800000001"]
)
def test_a_member_logs_in_with_email_or_phone_however_the_phone_is_typed(client, shopper, typed):
    response = log_in(client, typed)

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")
    assert client.get("/").wsgi_request.user == shopper
    assert "会员小李" in client.get("/").content.decode()


def test_a_wrong_password_is_refused_with_a_message(client, shopper):
    response = log_in(client, "13800000001", "not-the-password")

    assert response.status_code == 200
    assert "The phone number and/or password you specified are not correct." in (
        response.content.decode()
    )
    assert client.get("/").wsgi_request.user.is_anonymous


def test_a_staff_account_without_a_phone_can_log_in_with_its_email(client):
    staff = make_role_user("store_staff", email="staff@example.com", phone=None)

    response = log_in(client, "staff@example.com")

    assert response.status_code == 302
    assert client.get("/").wsgi_request.user == staff


def test_repeated_failed_logins_are_throttled_even_with_the_right_password_afterwards(
    client, shopper
):
    for _attempt in range(5):
        response = log_in(client, "13800000001", "wrong-password")
        assert THROTTLED not in response.content.decode()

    response = log_in(client, "+86 138 0000 0001", PASSWORD)

    assert THROTTLED in response.content.decode()
    assert client.get("/").wsgi_request.user.is_anonymous


def test_failed_logins_on_one_phone_do_not_lock_out_another_phone(
    client, shopper, phone_only_shopper
):
    for _attempt in range(5):
        log_in(client, "13800000001", "wrong-password")

    response = log_in(client, "13800000002", PASSWORD)

    assert response.status_code == 302
    assert client.get("/").wsgi_request.user == phone_only_shopper


def test_the_admin_login_is_allauths_throttled_login(client, shopper):
    response = client.get("/admin/login/?next=/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/?next=/admin/"
    assert response.request["PATH_INFO"] == LOGIN_URL

    for _attempt in range(5):
        client.post(
            "/accounts/login/?next=/admin/",
            {"login": "member@example.com", "password": "guess", "next": "/admin/"},
        )
    response = client.post(
        "/accounts/login/?next=/admin/",
        {"login": "member@example.com", "password": PASSWORD, "next": "/admin/"},
    )
    assert THROTTLED in response.content.decode()


def test_too_many_requests_from_one_address_get_a_429(client, shopper):
    # allauth's default "login" limit is 30 attempts a minute per address.
    statuses = {
        client.post(LOGIN_URL, {"login": f"nobody{n}@example.com", "password": "x"}).status_code
        for n in range(31)
    }
    assert 429 in statuses


def test_password_reset_by_email_code_sets_a_new_password(client, shopper):
    response = client.post("/accounts/password/reset/", {"email": "member@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    code = re.search(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", mail.outbox[0].body, re.M).group(1)

    response = client.post(response["Location"], {"code": code})
    assert response.status_code == 302
    response = client.post(
        response["Location"],
        {"password1": "brand-new-pass-77", "password2": "brand-new-pass-77"},
    )
    assert response.status_code == 302

    client.logout()
    assert log_in(client, "13800000001", PASSWORD).status_code == 200  # old one is gone
    assert log_in(client, "13800000001", "brand-new-pass-77").status_code == 302


def test_the_password_reset_page_tells_phone_only_members_what_to_do(client):
    page = client.get("/accounts/password/reset/").content.decode()

    assert "Joined with your mobile number only?" in page
    assert reverse("account_request_login_code") in page
    assert "please ask at any of our stores" in page


def test_a_phone_only_member_can_log_in_with_an_sms_code(client, phone_only_shopper, sms_outbox):
    response = client.post(reverse("account_request_login_code"), {"phone": "138 0000 0002"})
    assert response.status_code == 302
    assert [message.phone for message in sms_outbox] == ["+8613800000002"]
    code = re.search(r"\b(\d{6})\b", sms_outbox[0].text).group(1)

    response = client.post(response["Location"], {"code": code})

    assert response.status_code == 302
    assert client.get("/").wsgi_request.user == phone_only_shopper
    assert "手机会员" in client.get("/").content.decode()


def test_a_wrong_sms_login_code_does_not_log_in(client, phone_only_shopper, sms_outbox):
    response = client.post(reverse("account_request_login_code"), {"phone": "13800000002"})
    code = re.search(r"\b(\d{6})\b", sms_outbox[0].text).group(1)
    wrong = "000000" if code != "000000" else "111111"

    response = client.post(response["Location"], {"code": wrong})

    assert "Incorrect code." in response.content.decode()
    assert client.get("/").wsgi_request.user.is_anonymous


def test_the_code_page_in_chinese_asks_for_a_verification_code_and_says_when_it_is_wrong(
    client, phone_only_shopper, sms_outbox, settings
):
    settings.LANGUAGE_CODE = "zh-hans"
    login_page = client.get(LOGIN_URL).content.decode()
    assert "发送登录验证码给我" in login_page

    response = client.post(reverse("account_request_login_code"), {"phone": "13800000002"})
    page = client.get(response["Location"]).content.decode()
    assert re.search(r'<label for="id_code"[^>]*>\s*验证码', page), page
    assert "券码" not in page
    code = re.search(r"\b(\d{6})\b", sms_outbox[0].text).group(1)

    wrong = client.post(response["Location"], {"code": "000000" if code != "000000" else "1"})

    assert "验证码错误。" in wrong.content.decode()
    assert "错误代码" not in wrong.content.decode()


def test_coupon_codes_and_verification_codes_have_their_own_chinese_words():
    from django.utils import translation

    with translation.override("zh-hans"):
        # The coupon pages say "Coupon code", so allauth's "Code" is free to be 验证码.
        assert translation.gettext("Coupon code") == "券码"
        assert translation.gettext("Code") == "验证码"


@pytest.mark.parametrize(
    "role", ["store_staff", "store_manager", "marketer", "administrator", "auditor"]
)
def test_each_staff_role_lands_in_the_back_office_after_logging_in(client, role):
    make_role_user(role, email="staff@example.com")

    response = log_in(client, "staff@example.com")

    assert response["Location"] == reverse("staff:home")
    assert client.get(response["Location"]).status_code == 200


def test_a_member_lands_on_the_portal_and_a_next_page_is_honoured(client, shopper):
    assert log_in(client, "member@example.com")["Location"] == reverse("portal:home")
    client.logout()
    staff = make_role_user("marketer", email="staff@example.com")

    response = client.post(
        f"{LOGIN_URL}?next=/staff/audit/",
        {"login": staff.email, "password": PASSWORD, "next": "/staff/audit/"},
    )

    assert response["Location"] == "/staff/audit/"


def test_failed_logins_by_email_and_by_phone_count_together_for_one_account(client, shopper):
    for login in ("member@example.com", "13800000001", "member@example.com", "+8613800000001"):
        assert THROTTLED not in log_in(client, login, "wrong-password").content.decode()
    log_in(client, "MEMBER@example.com", "wrong-password")  # the fifth, whatever the case

    response = log_in(client, "13800000001", PASSWORD)

    assert THROTTLED in response.content.decode()
    assert client.get("/").wsgi_request.user.is_anonymous


def test_failed_logins_of_another_account_do_not_count_against_this_one(client, shopper):
    other = UserFactory(email="other@example.com", phone="+8613800000009", phone_verified=True)
    for _attempt in range(5):
        log_in(client, "other@example.com", "wrong-password")

    assert log_in(client, "13800000001", PASSWORD).status_code == 302
    assert other.pk != shopper.pk
