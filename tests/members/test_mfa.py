"""TOTP two-factor authentication for everyone, and required for staff when configured."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_role_user
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "demo-pass-123"


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


def totp_now(secret: str) -> str:
    counter = int(timezone.now().timestamp()) // 30
    return format_hotp_value(hotp_value(secret, counter))


def log_in(client, login: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"login": login, "password": password})


def test_a_member_activates_totp_and_then_needs_a_code_to_log_in(client):
    user = UserFactory(email="member@example.com", phone="+8613800000001", phone_verified=True)
    MemberFactory(user=user, phone=user.phone, name="会员小李")
    # The clock stands still (TOTP codes change every 30 s) and moves only when told to.
    with time_machine.travel(timezone.now(), tick=False) as clock:
        log_in(client, "13800000001")

        index = client.get(reverse("mfa_index"))
        assert index.status_code == 200
        assert reverse("mfa_activate_totp") in index.content.decode()
        # Adding an authenticator asks for the password again first.
        response = client.get(reverse("mfa_activate_totp"))
        assert response["Location"].startswith(reverse("account_reauthenticate"))
        response = client.post(response["Location"], {"password": PASSWORD})
        assert response["Location"] == reverse("mfa_activate_totp")
        page = client.get(reverse("mfa_activate_totp"))
        assert page.status_code == 200
        assert 'for="id_code"' in page.content.decode()  # labelled, in our layout
        assert 'class="site-header"' in page.content.decode()
        secret = page.context["form"].secret

        wrong = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
        assert "Incorrect code." in wrong.content.decode()
        assert not Authenticator.objects.filter(user=user).exists()

        response = client.post(reverse("mfa_activate_totp"), {"code": totp_now(secret)})
        assert response.status_code == 302
        assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()

        client.post(reverse("account_logout"))
        clock.shift(datetime.timedelta(seconds=60))  # a new code: each is accepted only once

        response = log_in(client, "13800000001")
        assert response.status_code == 302
        assert response["Location"] == reverse("mfa_authenticate")
        assert client.get("/").wsgi_request.user.is_anonymous

        wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
        assert "Incorrect code." in wrong.content.decode()
        response = client.post(reverse("mfa_authenticate"), {"code": totp_now(secret)})
        assert response.status_code == 302
        assert client.get("/").wsgi_request.user == user


STAFF_PAGE = "/staff/members/"


@override_settings(STAFF_REQUIRE_MFA=True)
def test_with_mfa_required_staff_without_totp_are_sent_to_set_it_up(client):
    client.force_login(make_role_user("store_staff", email="staff@example.com"))

    response = client.get(STAFF_PAGE)

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    follow = client.get(response["Location"], follow=True)
    assert "Set up an authenticator app before using the back office." in follow.content.decode()


@override_settings(STAFF_REQUIRE_MFA=True)
def test_with_mfa_required_staff_with_an_authenticator_get_through(client):
    staff = make_role_user("store_staff", email="staff@example.com")
    TOTP.activate(staff, generate_totp_secret())
    client.force_login(staff)

    assert client.get(STAFF_PAGE).status_code == 200


@override_settings(STAFF_REQUIRE_MFA=False)
def test_with_mfa_not_required_staff_get_through_without_totp(client):
    client.force_login(make_role_user("store_staff", email="staff@example.com"))

    assert client.get(STAFF_PAGE).status_code == 200


@override_settings(STAFF_REQUIRE_MFA=True)
def test_a_member_with_totp_is_still_no_staff(client):
    user = UserFactory()
    TOTP.activate(user, generate_totp_secret())
    client.force_login(user)

    assert client.get(STAFF_PAGE).status_code == 403


@override_settings(STAFF_REQUIRE_MFA=True)
def test_staff_with_totp_must_give_a_code_when_logging_in(client):
    staff = make_role_user("store_staff", email="staff@example.com")
    TOTP.activate(staff, generate_totp_secret())

    response = log_in(client, "staff@example.com")

    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get("/").wsgi_request.user.is_anonymous


# --- The Django admin asks for the same as /staff/ -----------------------------------------


def administrator(**kwargs):
    return make_role_user("administrator", email="admin@example.com", is_staff=True, **kwargs)


@override_settings(STAFF_REQUIRE_MFA=True)
@pytest.mark.parametrize("url", ["/admin/", "/admin/members/member/"])
def test_with_mfa_required_an_administrator_without_totp_is_sent_to_set_it_up(client, url):
    client.force_login(administrator())

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    follow = client.get(response["Location"], follow=True)
    assert "Set up an authenticator app before using the admin site." in follow.content.decode()


@override_settings(STAFF_REQUIRE_MFA=True)
def test_with_mfa_required_an_administrator_with_totp_opens_the_admin(client):
    admin = administrator()
    TOTP.activate(admin, generate_totp_secret())
    client.force_login(admin)

    assert client.get("/admin/members/member/").status_code == 200


@override_settings(STAFF_REQUIRE_MFA=False)
def test_without_mfa_required_an_administrator_opens_the_admin_with_a_password(client):
    client.force_login(administrator())

    assert client.get("/admin/members/member/").status_code == 200


@override_settings(STAFF_REQUIRE_MFA=True)
def test_a_password_alone_does_not_open_the_admin(client):
    admin = administrator()
    secret = generate_totp_secret()
    TOTP.activate(admin, secret)
    with time_machine.travel(timezone.now(), tick=False):
        login = client.get("/admin/login/?next=/admin/members/member/", follow=True)
        assert login.request["PATH_INFO"] == "/accounts/login/"

        response = client.post(
            "/accounts/login/?next=/admin/members/member/",
            {"login": "admin@example.com", "password": PASSWORD},
        )
        assert response["Location"] == reverse("mfa_authenticate")
        assert client.get("/admin/members/member/")["Location"].startswith("/admin/login/")

        response = client.post(reverse("mfa_authenticate"), {"code": totp_now(secret)})
        assert response["Location"] == "/admin/members/member/"
        assert client.get("/admin/members/member/").status_code == 200
