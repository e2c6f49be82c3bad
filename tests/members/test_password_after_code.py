"""A member who logged in with an SMS code sets a new password without the old one."""

from __future__ import annotations

import datetime
import re

import pytest
from django.urls import reverse

from members.models import AuditEntry, User
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGE = reverse("account_password_after_code")
OLD_PASSWORD = "demo-pass-123"  # the factories' password
NEW_PASSWORD = "fresh-lychee-2026"
REFUSED = "only once, within 15 minutes of logging in with an SMS code"


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def shopper(db):
    user = UserFactory(email=None, phone="+8613800000002", phone_verified=True)
    MemberFactory(user=user, phone=user.phone, name="手机会员", email=None)
    return user


def log_in_with_sms_code(client, sms_outbox, *, phone: str = "138 0000 0002", next_url=None):
    """Go through allauth's own request-code and confirm-code pages, as a shopper does."""
    sms_outbox.clear()
    url = reverse("account_request_login_code")
    if next_url:
        url += f"?next={next_url}"
    response = client.post(url, {"phone": phone, **({"next": next_url} if next_url else {})})
    assert response.status_code == 302
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1].text).group(1)
    response = client.post(response["Location"], {"code": code})
    assert response.status_code == 302
    return response


def log_in_with_password(client, password: str, login: str = "13800000002"):
    return client.post(reverse("account_login"), {"login": login, "password": password})


def set_password(client, password1: str = NEW_PASSWORD, password2: str | None = None):
    return client.post(
        PAGE,
        {"new_password1": password1, "new_password2": password2 or password1},
    )


def test_after_an_sms_code_login_a_member_sets_a_new_password_and_logs_in_with_it(
    client, shopper, sms_outbox
):
    log_in_with_sms_code(client, sms_outbox)

    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Old password" not in page.content.decode()
    response = set_password(client)

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:profile")
    followed = client.get(response["Location"])
    assert followed.wsgi_request.user == shopper  # still logged in
    assert "Your new password has been saved." in followed.content.decode()

    client.logout()
    assert log_in_with_password(client, OLD_PASSWORD).status_code == 200  # refused
    assert log_in_with_password(client, NEW_PASSWORD).status_code == 302
    assert client.get("/").wsgi_request.user == shopper


def test_the_change_writes_one_audit_entry_for_the_member(client, shopper, sms_outbox):
    log_in_with_sms_code(client, sms_outbox)

    set_password(client)

    entry = AuditEntry.objects.get(action="user.password_set_after_code")
    assert entry.actor == shopper
    assert entry.target_type == "user"
    assert entry.target_id == str(shopper.pk)
    assert entry.member == shopper.member
    assert NEW_PASSWORD not in str(entry.details)


def test_the_profile_links_to_the_page_only_after_a_code_login(client, shopper, sms_outbox):
    log_in_with_password(client, OLD_PASSWORD)
    assert PAGE not in client.get(reverse("portal:profile")).content.decode()

    client.logout()
    log_in_with_sms_code(client, sms_outbox)
    profile = client.get(reverse("portal:profile")).content.decode()
    assert f'href="{PAGE}"' in profile
    assert "Set a new password" in profile


def test_a_member_logged_in_by_password_is_sent_to_change_password(client, shopper):
    log_in_with_password(client, OLD_PASSWORD)

    response = client.get(PAGE)

    assert response.status_code == 403
    page = response.content.decode()
    assert REFUSED in page
    assert reverse("account_change_password") in page
    assert 'name="new_password1"' not in page
    set_password(client)
    assert User.objects.get(pk=shopper.pk).check_password(OLD_PASSWORD)
    assert not AuditEntry.objects.filter(action="user.password_set_after_code").exists()


def test_a_code_login_older_than_15_minutes_no_longer_allows_it(
    client, shopper, sms_outbox, time_machine
):
    start = datetime.datetime(2026, 3, 15, 10, 0, tzinfo=datetime.UTC)
    time_machine.move_to(start, tick=False)
    log_in_with_sms_code(client, sms_outbox)

    time_machine.move_to(start + datetime.timedelta(minutes=15), tick=False)
    assert client.get(PAGE).status_code == 200  # the 15th minute still counts

    time_machine.move_to(start + datetime.timedelta(minutes=15, seconds=1), tick=False)
    response = set_password(client)

    assert response.status_code == 403
    assert REFUSED in response.content.decode()
    assert User.objects.get(pk=shopper.pk).check_password(OLD_PASSWORD)
    assert PAGE not in client.get(reverse("portal:profile")).content.decode()


def test_passwords_that_differ_are_refused_and_nothing_changes(client, shopper, sms_outbox):
    log_in_with_sms_code(client, sms_outbox)

    response = set_password(client, NEW_PASSWORD, "something-else-2026")

    assert response.status_code == 200
    assert "The two password fields didn’t match." in response.content.decode()
    assert User.objects.get(pk=shopper.pk).check_password(OLD_PASSWORD)
    assert not AuditEntry.objects.filter(action="user.password_set_after_code").exists()


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("abc12", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("2026031512", "This password is entirely numeric."),
    ],
)
def test_a_weak_password_is_refused_with_the_reason(client, shopper, sms_outbox, password, message):
    log_in_with_sms_code(client, sms_outbox)

    response = set_password(client, password)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert User.objects.get(pk=shopper.pk).check_password(OLD_PASSWORD)
    # A failed try does not use up the code login.
    assert set_password(client).status_code == 302


def test_one_code_login_sets_a_password_only_once(client, shopper, sms_outbox):
    log_in_with_sms_code(client, sms_outbox)
    assert set_password(client).status_code == 302

    response = set_password(client, "another-lychee-2027")

    assert response.status_code == 403
    assert User.objects.get(pk=shopper.pk).check_password(NEW_PASSWORD)
    assert AuditEntry.objects.filter(action="user.password_set_after_code").count() == 1
    assert PAGE not in client.get(reverse("portal:profile")).content.decode()


def test_a_new_code_login_allows_it_again(client, shopper, sms_outbox):
    log_in_with_sms_code(client, sms_outbox)
    assert set_password(client).status_code == 302
    client.logout()

    log_in_with_sms_code(client, sms_outbox)

    assert set_password(client, "another-lychee-2027").status_code == 302
    assert User.objects.get(pk=shopper.pk).check_password("another-lychee-2027")


def test_someone_not_logged_in_is_sent_to_log_in_with_a_code_and_brought_back(
    client, shopper, sms_outbox
):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_request_login_code") + "?next=")

    response = log_in_with_sms_code(client, sms_outbox, next_url=PAGE)
    assert response["Location"] == PAGE
    assert client.get(PAGE).status_code == 200


def test_the_refusal_offers_to_log_out_and_log_in_with_a_code(client, shopper, sms_outbox):
    log_in_with_password(client, OLD_PASSWORD)
    page = client.get(PAGE).content.decode()
    next_url = re.search(r'name="next" value="([^"]+)"', page).group(1)
    assert "Log out and log in with an SMS code" in page

    response = client.post(reverse("account_logout"), {"next": next_url})

    assert response["Location"] == next_url
    assert client.get("/").wsgi_request.user.is_anonymous
    response = log_in_with_sms_code(client, sms_outbox, next_url=PAGE)
    assert response["Location"] == PAGE


def test_the_password_reset_page_sends_phone_only_members_here_after_the_code(client):
    page = client.get(reverse("account_reset_password")).content.decode()

    assert "you can then set a new password without the old one" in page
    assert f"{reverse('account_request_login_code')}?next={PAGE.replace('/', '%2F')}" in page
