"""A member enrolled at the till is welcomed by SMS and logs in online with an SMS code.

PRODUCT.md: "A member enrolled at the till gets a welcome SMS and can log in online with an
SMS code at once (the same member record)."
"""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from members.models import ConsentEvent, Member, User
from members.services import api_token_create
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SIGNUP_URL = "/accounts/signup/"
VERIFY_URL = "/accounts/phone/verify/"


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def till_member(store):
    return MemberFactory(
        phone="+8613812345678", name="王芳", home_store=store, consent_sms=False, consent_email=True
    )


def code_from(outbox) -> str:
    assert outbox, "no SMS was sent"
    return re.search(r"\b(\d{6})\b", outbox[-1].text).group(1)


def request_code(client, phone: str):
    return client.post(reverse("account_request_login_code"), {"phone": phone})


def test_a_member_enrolled_at_the_till_logs_in_with_an_sms_code(client, till_member, sms_outbox):
    response = request_code(client, "138 1234 5678")
    assert response.status_code == 302
    assert [message.phone for message in sms_outbox] == ["+8613812345678"]

    response = client.post(response["Location"], {"code": code_from(sms_outbox)})

    assert response.status_code == 302
    user = client.get("/").wsgi_request.user
    assert user.is_authenticated
    # The same member record, with the login attached; no second member.
    assert Member.objects.count() == 1
    till_member.refresh_from_db()
    assert till_member.user == user
    assert (user.phone, user.phone_verified) == ("+8613812345678", True)
    assert "王芳" in client.get("/").content.decode()
    # What the member chose at the till stays as it was: logging in asks nothing.
    assert (till_member.consent_sms, till_member.consent_email) == (False, True)
    assert not ConsentEvent.objects.filter(member=till_member).exists()


def test_the_next_code_login_opens_the_same_login(client, till_member, sms_outbox):
    response = request_code(client, "13812345678")
    client.post(response["Location"], {"code": code_from(sms_outbox)})
    first = client.get("/").wsgi_request.user
    client.logout()
    sms_outbox.clear()

    response = request_code(client, "13812345678")
    client.post(response["Location"], {"code": code_from(sms_outbox)})

    assert client.get("/").wsgi_request.user == first
    assert User.objects.count() == 1


def test_asking_for_codes_again_and_again_makes_one_login_at_most(client, till_member, sms_outbox):
    from django.core.cache import cache

    for _attempt in range(3):
        request_code(client, "13812345678")
        cache.clear()  # past the one-code-per-number limit

    assert User.objects.count() == 1
    till_member.refresh_from_db()
    assert till_member.user is None  # nothing is attached before a code is proven


def test_a_code_asked_for_but_not_used_does_not_stop_the_member_signing_up(
    client, till_member, sms_outbox
):
    from django.core.cache import cache
    from django.test import Client

    request_code(Client(), "13812345678")
    cache.clear()
    sms_outbox.clear()

    client.post(
        SIGNUP_URL,
        {
            "phone": "13812345678",
            "name": "王芳",
            "email": "wf@example.com",
            "password1": "a-long-enough-pass-42",
            "password2": "a-long-enough-pass-42",
            "accept_privacy": "on",
        },
    )
    client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    till_member.refresh_from_db()
    assert till_member.user.email == "wf@example.com"
    assert Member.objects.count() == 1


# --- The welcome SMS ----------------------------------------------------------------------


def test_a_cashier_enrolment_texts_the_member_how_to_log_in_without_marketing_consent(
    staff_client, store, sms_outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/staff/members/new/",
            {
                "phone": "138 1234 5678",
                "name": "王芳",
                "store": str(store.pk),
                "accept_privacy": "on",
                # no consent_sms: the welcome is a service message, not an offer
            },
        )

    assert response.status_code == 302
    member = Member.objects.get()
    assert member.consent_sms is False
    assert [message.phone for message in sms_outbox] == ["+8613812345678"]
    text = sms_outbox[0].text
    assert member.member_no in text
    assert "“发送登录验证码给我”" in text  # the link on the log-in page, as members see it


def test_a_pos_enrolment_texts_the_member_how_to_log_in(
    client, store, sms_outbox, django_capture_on_commit_callbacks
):
    _token, raw = api_token_create(store=store, name="till 1")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/members",
            json.dumps({"phone": "13812345678", "name": "张伟", "store": "SH001"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )

    assert response.status_code == 201
    member = Member.objects.get()
    assert [(message.phone, member.member_no in message.text) for message in sms_outbox] == [
        ("+8613812345678", True)
    ]


def test_a_pos_enrolment_answers_201_when_the_task_queue_is_down(
    client, store, sms_outbox, django_capture_on_commit_callbacks, monkeypatch
):
    from members import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(tasks.member_welcome_send_task, "delay", broker_down)
    _token, raw = api_token_create(store=store, name="till 1")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/members",
            json.dumps({"phone": "13812345678", "name": "张伟", "store": "SH001"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )

    assert response.status_code == 201
    assert response.json()["member_no"] == Member.objects.get().member_no
    assert sms_outbox == []


def test_a_refused_enrolment_sends_nothing(
    client, till_member, sms_outbox, django_capture_on_commit_callbacks
):
    _token, raw = api_token_create(store=till_member.home_store, name="till 1")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/members",
            json.dumps({"phone": "13812345678", "name": "张伟", "store": "SH001"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )

    assert response.status_code == 409
    assert sms_outbox == []


def test_online_sign_up_gets_no_welcome_sms_only_its_code(
    client, sms_outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            SIGNUP_URL,
            {
                "phone": "13812345678",
                "name": "王芳",
                "password1": "a-long-enough-pass-42",
                "password2": "a-long-enough-pass-42",
                "accept_privacy": "on",
            },
        )
        client.post(VERIFY_URL, {"code": code_from(sms_outbox)})

    assert Member.objects.get().user is not None
    assert len(sms_outbox) == 1


def test_a_code_for_a_membership_closed_meanwhile_enrols_nobody(
    client, till_member, sms_outbox, staff_user
):
    from members.services import member_close

    response = request_code(client, "13812345678")
    member_close(member=till_member, actor=staff_user)

    response = client.post(response["Location"], {"code": code_from(sms_outbox)})

    assert response.status_code == 403
    assert "Please ask at a store." in response.content.decode()
    assert Member.objects.count() == 1
    assert client.get("/").wsgi_request.user.is_anonymous
