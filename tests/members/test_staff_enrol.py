"""Enrolling a shopper at the till from the back office."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse

from members.models import AuditEntry, ConsentEvent, Member
from tests.factories import MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

ENROL_URL = "/staff/members/new/"


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


def enrol_data(at_store, **overrides) -> dict:
    data = {
        "phone": "138 1234 5678",
        "name": "王芳",
        "birthday": "1992-08-09",
        "gender": "F",
        "email": "wangfang@example.com",
        "store": str(at_store.pk),
        "consent_sms": "on",
        "accept_privacy": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def page(response) -> str:
    return response.content.decode()


def written() -> tuple[int, int, int]:
    return Member.objects.count(), ConsentEvent.objects.count(), AuditEntry.objects.count()


def selected_store(html: str) -> str:
    select = re.search(r'<select name="store".*?</select>', html, re.S).group(0)
    return re.search(r'<option value="(\d+)" selected>', select).group(1)


# --- who may enrol -----------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(ENROL_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("role", ["marketer", "auditor"])
def test_roles_without_add_member_cannot_enrol(client, role_user, store, role):
    client.force_login(role_user(role))
    assert client.get(ENROL_URL).status_code == 403
    assert client.post(ENROL_URL, enrol_data(store)).status_code == 403
    assert Member.objects.count() == 0


def test_a_shopper_without_a_role_cannot_enrol(client, store):
    client.force_login(UserFactory())
    assert client.post(ENROL_URL, enrol_data(store)).status_code == 403
    assert Member.objects.count() == 0


# --- the form ----------------------------------------------------------------------------


def test_the_form_starts_at_the_phone_and_labels_every_field(staff_client, store):
    html = page(staff_client.get(ENROL_URL))
    phone = re.search(r'<input[^>]*name="phone"[^>]*>', html).group(0)
    assert "autofocus" in phone
    assert 'type="tel"' in phone
    for field in (
        "phone",
        "name",
        "birthday",
        "gender",
        "email",
        "store",
        "consent_sms",
        "consent_email",
        "accept_privacy",
    ):
        assert f'for="id_{field}"' in html, field
    assert f"Privacy notice version {settings.PRIVACY_NOTICE_VERSION}" in html
    assert f'action="{ENROL_URL}"' in html


def test_the_phone_comes_prefilled_from_a_search_that_found_nobody(staff_client, store):
    html = page(staff_client.get(ENROL_URL, {"phone": "13900001111"}))
    assert re.search(r'<input[^>]*name="phone"[^>]*value="13900001111"', html)


def test_the_store_defaults_to_the_first_of_the_staff_members_active_stores(
    staff_client, staff_user
):
    closed = StoreFactory(code="AA000", name="已关闭", is_active=False)
    beijing = StoreFactory(code="BJ001", name="北京店")
    StoreFactory(code="AB001", name="别人的店")
    staff_user.stores.add(closed, beijing)
    html = page(staff_client.get(ENROL_URL))
    assert selected_store(html) == str(beijing.pk)
    assert "已关闭" not in html
    assert "别人的店" not in html


def test_the_store_chosen_last_time_is_offered_again(staff_client):
    StoreFactory(code="BJ001", name="北京店")
    shanghai = StoreFactory(code="SH001", name="上海店")
    staff_client.post(ENROL_URL, enrol_data(shanghai))
    html = page(staff_client.get(ENROL_URL))
    assert selected_store(html) == str(shanghai.pk)


# --- enrolling ---------------------------------------------------------------------------


def test_a_cashier_enrols_a_shopper_and_lands_on_the_new_member_page(
    staff_client, staff_user, store
):
    response = staff_client.post(ENROL_URL, enrol_data(store), follow=True)
    member = Member.objects.get()
    assert response.redirect_chain == [
        (reverse("staff:member-detail", args=[member.member_no]), 302)
    ]
    grouped = " ".join(member.member_no[i : i + 4] for i in (0, 4, 8))
    assert f"王芳 is now a member. Member number: {grouped}" in page(response)
    assert member.phone == "+8613812345678"
    assert member.email == "wangfang@example.com"
    assert str(member.birthday) == "1992-08-09"
    assert member.gender == "F"
    assert member.enrolment_channel == Member.Channel.STORE
    assert member.enrolment_store == store
    assert member.home_store == store
    assert member.enrolled_by == staff_user
    assert member.privacy_notice_version == settings.PRIVACY_NOTICE_VERSION
    assert member.consent_sms is True
    assert member.consent_email is False
    events = {(event.kind, event.granted, event.source) for event in member.consent_events.all()}
    assert events == {
        ("privacy_notice", True, "store"),
        ("sms", True, "store"),
        ("email", False, "store"),
    }
    entry = AuditEntry.objects.get(action="member.enrol")
    assert entry.actor == staff_user
    assert entry.details == {"channel": "store", "store": store.code}


def test_only_phone_name_and_privacy_are_needed(staff_client, store):
    data = enrol_data(store, birthday=None, gender=None, email=None, consent_sms=None)
    response = staff_client.post(ENROL_URL, data)
    assert response.status_code == 302
    member = Member.objects.get()
    assert member.email is None
    assert member.birthday is None
    assert member.consent_sms is False


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"phone": "12345"}, "phone", "Enter a valid mobile number"),
        ({"phone": ""}, "phone", "This field is required."),
        ({"name": "   "}, "name", "This field is required."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"birthday": "2999-01-01"}, "birthday", "Enter a real birthday"),
        ({"birthday": "1899-12-31"}, "birthday", "This birthday is too early"),
        ({"birthday": "17/05/1990x"}, "birthday", "Enter a valid date."),
        ({"accept_privacy": None}, "accept_privacy", "must see and accept the privacy notice"),
        ({"store": "999999"}, "store", "You can only do this for your own stores."),
    ],
)
def test_bad_input_gets_a_message_at_the_field_and_writes_nothing(
    staff_client, store, overrides, field, message
):
    before = written()
    response = staff_client.post(ENROL_URL, enrol_data(store, **overrides))
    html = page(response)
    assert response.status_code == 400
    error = re.search(
        rf'<label for="id_{field}".*?<div class="field-error" role="alert">(.*?)</div>', html, re.S
    )
    assert error, html
    assert message in error.group(1)
    assert written() == before


def test_an_inactive_store_cannot_be_chosen(staff_client, store):
    closed = StoreFactory(code="XX999", is_active=False)
    response = staff_client.post(ENROL_URL, enrol_data(closed))
    assert response.status_code == 400
    assert Member.objects.count() == 0


def test_a_phone_that_is_already_a_member_links_to_that_member_and_writes_nothing(
    staff_client, store
):
    existing = MemberFactory(phone="+8613812345678", name="李娜")
    before = written()
    response = staff_client.post(ENROL_URL, enrol_data(store, phone="13812345678"))
    html = page(response)
    assert response.status_code == 400
    assert "This phone number is already a member" in html
    assert f'href="{reverse("staff:member-detail", args=[existing.member_no])}"' in html
    assert "李娜" in html
    assert written() == before


def test_an_email_that_belongs_to_a_member_links_to_that_member_and_writes_nothing(
    staff_client, store
):
    existing = MemberFactory(email="wangfang@example.com")
    before = written()
    html = page(staff_client.post(ENROL_URL, enrol_data(store)))
    assert "This e-mail already belongs to a member" in html
    assert f'href="{reverse("staff:member-detail", args=[existing.member_no])}"' in html
    assert written() == before


def test_a_double_submit_enrols_once_and_the_second_shows_the_member(staff_client, store):
    first = staff_client.post(ENROL_URL, enrol_data(store))
    assert first.status_code == 302
    member = Member.objects.get()
    before = written()
    second = staff_client.post(ENROL_URL, enrol_data(store))
    assert second.status_code == 400
    html = page(second)
    assert "This phone number is already a member" in html
    assert f'href="{reverse("staff:member-detail", args=[member.member_no])}"' in html
    assert written() == before


def test_the_enrol_page_has_no_inline_styles_or_scripts(staff_client, store):
    html = page(staff_client.get(ENROL_URL))
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
