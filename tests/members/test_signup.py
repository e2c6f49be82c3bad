"""Online sign-up through allauth's real pages: phone, SMS code, member card."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from members.models import ConsentEvent, Member, User
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    # Assert on the English source strings, whatever translations exist.
    settings.LANGUAGE_CODE = "en"


SIGNUP_URL = "/accounts/signup/"
VERIFY_URL = "/accounts/phone/verify/"


def signup_data(**overrides) -> dict:
    data = {
        "phone": "13812345678",
        "name": "王芳",
        "email": "wangfang@example.com",
        "password1": "a-long-enough-pass-42",
        "password2": "a-long-enough-pass-42",
        "accept_privacy": "on",
        "consent_sms": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def code_from(outbox) -> str:
    assert outbox, "no SMS was sent"
    match = re.search(r"\b([0-9]{6})\b", outbox[-1].text)
    assert match, outbox[-1].text
    return match.group(1)


def test_the_signup_page_asks_for_phone_name_privacy_and_consent_with_labels(client):
    page = client.get(SIGNUP_URL).content.decode()
    for field in (
        "phone",
        "name",
        "email",
        "password1",
        "password2",
        "accept_privacy",
        "consent_sms",
        "consent_email",
    ):
        assert f'for="id_{field}"' in page, field
    assert reverse("portal:privacy-notice") in page


def test_a_shopper_signs_up_verifies_the_phone_and_sees_the_member_card(client, sms_outbox):
    response = client.post(SIGNUP_URL, signup_data())
    assert response.status_code == 302
    assert response["Location"] == VERIFY_URL
    assert [message.phone for message in sms_outbox] == ["+8613812345678"]
    # Nothing is enrolled before the phone is proven.
    assert not Member.objects.exists()

    response = client.post(VERIFY_URL, {"code": code_from(sms_outbox)})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")

    member = Member.objects.get()
    assert member.name == "王芳"
    assert member.phone == "+8613812345678"
    assert member.email == "wangfang@example.com"
    assert member.enrolment_channel == Member.Channel.ONLINE
    assert member.user == User.objects.get(phone="+8613812345678")
    assert member.user.phone_verified

    home = client.get(reverse("portal:home")).content.decode()
    assert "王芳" in home
    assert " ".join(re.findall("....", member.member_no)) in home
    assert "<svg" in home


def test_signup_records_the_privacy_notice_version_and_each_marketing_choice(client, sms_outbox):
    client.post(SIGNUP_URL, signup_data(consent_sms="on", consent_email=None))
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    member = Member.objects.get()
    assert member.privacy_notice_version == settings.PRIVACY_NOTICE_VERSION
    assert member.privacy_accepted_at is not None
    assert (member.consent_sms, member.consent_email) == (True, False)
    events = {
        (event.kind, event.granted, event.version, event.source)
        for event in ConsentEvent.objects.filter(member=member)
    }
    assert events == {
        ("privacy_notice", True, settings.PRIVACY_NOTICE_VERSION, "signup"),
        ("sms", True, "", "signup"),
        ("email", False, "", "signup"),
    }


def test_a_shopper_enrolled_at_the_till_gets_the_same_member_record_when_joining_online(
    client, sms_outbox, store
):
    till = MemberFactory(phone="+8613812345678", name="王芳", home_store=store, email=None)
    number = till.member_no

    client.post(SIGNUP_URL, signup_data(phone="+86 138 1234 5678"))
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    assert Member.objects.count() == 1
    member = Member.objects.get()
    assert member.pk == till.pk
    assert member.member_no == number
    assert member.enrolment_channel == Member.Channel.STORE
    assert member.home_store == store
    assert member.user.phone == "+8613812345678"
    assert member.email == "wangfang@example.com"
    assert number in client.get("/").content.decode().replace(" ", "")


def test_a_wrong_code_is_refused_with_a_clear_message_and_nothing_is_enrolled(client, sms_outbox):
    client.post(SIGNUP_URL, signup_data())
    right = code_from(sms_outbox)
    wrong = "000000" if right != "000000" else "111111"

    response = client.post(VERIFY_URL, {"code": wrong})

    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert not Member.objects.exists()
    assert not User.objects.get().phone_verified
    assert client.get("/").wsgi_request.user.is_anonymous


def test_signup_without_accepting_the_privacy_notice_is_refused(client, sms_outbox):
    response = client.post(SIGNUP_URL, signup_data(accept_privacy=None))
    assert response.status_code == 200
    assert "You must accept the privacy notice to join." in response.content.decode()
    assert not User.objects.exists()
    assert not sms_outbox


def test_an_invalid_phone_gets_a_clear_message(client, sms_outbox):
    response = client.post(SIGNUP_URL, signup_data(phone="12345"))
    assert "Enter a valid mobile phone number" in response.content.decode()
    assert not User.objects.exists()


def test_a_phone_that_already_has_a_login_cannot_sign_up_again(client, sms_outbox):
    client.post(SIGNUP_URL, signup_data())
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})
    client.logout()
    sms_outbox.clear()
    cache.clear()  # minutes later: the one-code-per-30-seconds limit has passed

    client.post(SIGNUP_URL, signup_data(email="other@example.com", name="冒名者"))

    assert User.objects.count() == 1
    assert Member.objects.get().name == "王芳"
    # allauth hides whether the number exists; the owner is told by SMS instead.
    assert len(sms_outbox) == 1
    assert "already has an account" in sms_outbox[0].text


def test_a_second_signup_for_the_same_phone_within_seconds_is_throttled_not_an_error(
    client, sms_outbox
):
    client.post(SIGNUP_URL, signup_data())
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})
    client.logout()

    response = client.post(SIGNUP_URL, signup_data(email="other@example.com", name="冒名者"))

    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert User.objects.count() == 1


def test_signing_up_with_an_email_another_member_already_has_still_enrols_by_phone(
    client, sms_outbox
):
    MemberFactory(phone="+8613900000000", email="wangfang@example.com")
    client.post(SIGNUP_URL, signup_data())
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    member = Member.objects.get(phone="+8613812345678")
    assert member.user is not None
    assert member.email is None


def test_a_number_on_another_login_s_membership_is_refused_clearly_and_nothing_is_written(
    client, sms_outbox
):
    # A member whose phone was changed at a store: the login still has the old number.
    owner = UserFactory(phone="+8613911112222", phone_verified=True)
    MemberFactory(user=owner, phone="+8613812345678", name="老会员")

    client.post(SIGNUP_URL, signup_data())
    response = client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    assert response.status_code == 403
    assert "This number belongs to another membership. Please ask at a store." in (
        response.content.decode()
    )
    assert Member.objects.get().user == owner
    assert not User.objects.get(phone="+8613812345678").phone_verified


def test_a_number_someone_typed_but_never_verified_does_not_lock_out_its_owner(client, sms_outbox):
    """Pre-hijacking: a stranger signs up with the shopper's phone and cannot verify it."""
    from django.core.cache import cache
    from django.test import Client

    stranger = Client()
    stranger.post(SIGNUP_URL, signup_data(email="stranger@example.com"))
    squatter = User.objects.get(email="stranger@example.com")
    assert squatter.phone == "+8613812345678" and not squatter.phone_verified
    sms_outbox.clear()
    cache.clear()  # later on: the per-number code rate limit has passed

    # The real owner joins with the same number, proves it, and gets the membership.
    response = client.post(SIGNUP_URL, signup_data(email="owner@example.com"))
    assert response["Location"] == VERIFY_URL
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    member = Member.objects.get(phone="+8613812345678")
    assert member.user.email == "owner@example.com"
    squatter.refresh_from_db()
    assert squatter.phone is None
    assert not hasattr(squatter, "member") or squatter.member is None


# --- a friend's referral code -------------------------------------------------------------


def test_a_friends_referral_link_fills_in_the_code(client):
    friend = MemberFactory(referral_code="ABCD2345")

    page = client.get(f"{SIGNUP_URL}?ref=abcd-2345").content.decode()

    assert 'for="id_referral_code"' in page
    assert re.search(r'<input[^>]*name="referral_code"[^>]*value="ABCD2345"', page)
    assert friend.referral_code == "ABCD2345"


def test_the_signup_page_without_a_link_leaves_the_code_empty(client):
    page = client.get(SIGNUP_URL).content.decode()
    field = re.search(r'<input[^>]*name="referral_code"[^>]*>', page).group(0)
    assert "value=" not in field


@pytest.mark.parametrize("code", ["NOSUCH23", "1"])
def test_a_referral_code_nobody_has_is_a_form_error_and_nothing_is_written(
    client, sms_outbox, code
):
    MemberFactory(referral_code="ABCD2345")

    response = client.post(SIGNUP_URL, signup_data(referral_code=code))

    assert response.status_code == 200
    assert "No member has this referral code." in response.content.decode()
    assert not User.objects.filter(phone="+8613812345678").exists()
    assert sms_outbox == []


def test_a_closed_members_code_refers_no_one(client, sms_outbox):
    MemberFactory(referral_code="ABCD2345", status=Member.Status.CLOSED)

    response = client.post(SIGNUP_URL, signup_data(referral_code="ABCD2345"))

    assert "No member has this referral code." in response.content.decode()


def test_signing_up_with_a_friends_code_makes_the_friend_the_referrer(client, sms_outbox):
    friend = MemberFactory(referral_code="ABCD2345")

    client.post(SIGNUP_URL, signup_data(referral_code=" abcd 2345 "))
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    member = Member.objects.get(phone="+8613812345678")
    assert member.referrer == friend
    assert member.referral_code != friend.referral_code


def test_signing_up_without_a_code_has_no_referrer(client, sms_outbox):
    client.post(SIGNUP_URL, signup_data())
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    assert Member.objects.get(phone="+8613812345678").referrer is None


def test_a_member_enrolled_at_the_till_does_not_get_a_referrer_by_joining_online(
    client, sms_outbox
):
    friend = MemberFactory(referral_code="ABCD2345")
    at_till = MemberFactory(phone="+8613812345678", user=None)

    client.post(SIGNUP_URL, signup_data(referral_code="ABCD2345"))
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    at_till.refresh_from_db()
    assert at_till.user is not None
    assert at_till.referrer is None
    assert not friend.referees.exists()
