"""The log-in and sign-up pages text members only, and within an hourly budget.

Anyone can type any number into them: texts to numbers without a member bother strangers
and cost money, and the pages must not tell which numbers are members.
"""

from __future__ import annotations

import datetime
import logging

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.models import Member, User
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

REQUEST_CODE_URL = "/accounts/login/code/"


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def members(db):
    """Ten members who log in online, with phones +8613800000000 … +8613800000009."""
    result = []
    for n in range(10):
        user = UserFactory(phone=f"+86138000000{n:02d}", phone_verified=True)
        result.append(MemberFactory(user=user, phone=user.phone))
    return result


def request_code(client, phone: str, ip: str = "203.0.113.7"):
    # A new session each time, as a script would: a session with a code pending is sent
    # back to that code's page instead.
    return Client().post(REQUEST_CODE_URL, {"phone": phone}, REMOTE_ADDR=ip)


def test_numbers_without_a_member_get_no_text_and_the_same_answer(client, members, sms_outbox):
    known = request_code(client, "13800000001")
    assert len(sms_outbox) == 1
    sms_outbox.clear()

    answers = [request_code(client, f"139{n:08d}", ip=f"198.51.100.{n}") for n in range(5)]

    assert sms_outbox == []
    assert {(answer.status_code, answer["Location"]) for answer in answers} == {
        (known.status_code, known["Location"])
    }
    assert not User.objects.filter(phone__startswith="+86139").exists()


def test_twenty_five_requests_from_one_address_send_no_text_to_unknown_numbers(
    client, members, sms_outbox
):
    statuses = [request_code(client, f"139{n:08d}").status_code for n in range(25)]

    assert sms_outbox == []
    # The default budget is 20 an hour per address: the rest are refused (429, and past
    # 20 a minute also allauth's own limit on the form).
    assert statuses[:20] == [302] * 20
    # Refused: the page again with allauth's message (200), or our 429.
    assert set(statuses[20:]) <= {200, 429}


def test_a_closed_members_number_gets_no_text(client, store, sms_outbox):
    MemberFactory(phone="+8613812345678", status=Member.Status.CLOSED)

    response = request_code(client, "13812345678")

    assert response.status_code == 302
    assert sms_outbox == []


def test_one_address_gets_its_hourly_budget_of_texts_then_a_429_and_a_warning(
    client, members, sms_outbox, settings, caplog
):
    settings.SMS_HOURLY_LIMIT_PER_IP = 3
    with time_machine.travel(timezone.now(), tick=False) as clock:
        statuses = [request_code(client, f"138000000{n:02d}").status_code for n in range(5)]

        assert statuses == [302, 302, 302, 429, 429]
        assert len(sms_outbox) == 3
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "SMS" in r.msg]
        assert len(warnings) == 1
        assert "203.0.113.7" in warnings[0].getMessage()

        # Another address still gets its texts; the first one does again an hour later.
        assert request_code(client, "13800000006", ip="198.51.100.1").status_code == 302
        clock.shift(datetime.timedelta(hours=1))
        assert request_code(client, "13800000007").status_code == 302
    assert len(sms_outbox) == 5


def test_requests_for_numbers_without_a_member_count_against_the_budget_too(
    client, members, sms_outbox, settings
):
    # Otherwise the budget itself would tell members from strangers.
    settings.SMS_HOURLY_LIMIT_PER_IP = 2
    request_code(client, "13900000001")
    request_code(client, "13900000002")

    assert request_code(client, "13800000001").status_code == 429
    assert sms_outbox == []


def test_all_addresses_together_stop_at_the_total_budget(
    client, members, sms_outbox, settings, caplog
):
    settings.SMS_HOURLY_LIMIT_TOTAL = 2
    statuses = [
        request_code(client, f"138000000{n:02d}", ip=f"198.51.100.{n}").status_code
        for n in range(3)
    ]

    assert statuses == [302, 302, 429]
    assert len(sms_outbox) == 2
    assert any("all addresses" in r.getMessage() for r in caplog.records)


def test_sign_up_texts_count_against_the_same_budget(client, sms_outbox, settings):
    settings.SMS_HOURLY_LIMIT_PER_IP = 1
    data = {
        "name": "王芳",
        "password1": "a-long-enough-pass-42",
        "password2": "a-long-enough-pass-42",
        "accept_privacy": "on",
    }

    first = client.post("/accounts/signup/", {**data, "phone": "13812345678"})
    second = Client().post("/accounts/signup/", {**data, "phone": "13912345678"})

    assert first.status_code == 302
    assert second.status_code == 429
    assert [message.phone for message in sms_outbox] == ["+8613812345678"]


def test_asking_for_the_sign_up_code_again_counts_too(client, sms_outbox, settings):
    settings.SMS_HOURLY_LIMIT_PER_IP = 1
    with time_machine.travel(datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.UTC), tick=False):
        client.post(
            "/accounts/signup/",
            {
                "phone": "13812345678",
                "name": "王芳",
                "password1": "a-long-enough-pass-42",
                "password2": "a-long-enough-pass-42",
                "accept_privacy": "on",
            },
        )
    # Past allauth's one code a number per 30 seconds, within the same hour.
    with time_machine.travel(datetime.datetime(2026, 3, 2, 10, 2, tzinfo=datetime.UTC), tick=False):
        resend = client.post("/accounts/phone/verify/", {"action": "resend"})

    assert resend.status_code == 429
    assert len(sms_outbox) == 1
    assert reverse("account_login") in resend.content.decode()  # the way back


def test_behind_a_proxy_each_client_address_has_its_own_budget(members, sms_outbox, settings):
    settings.SMS_HOURLY_LIMIT_PER_IP = 1
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1

    def via_proxy(phone: str, client_ip: str):
        return Client().post(
            REQUEST_CODE_URL,
            {"phone": phone},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=client_ip,
        )

    assert via_proxy("13800000001", "203.0.113.7").status_code == 302
    assert via_proxy("13800000002", "198.51.100.1").status_code == 302
    assert via_proxy("13800000003", "203.0.113.7").status_code == 429
    assert len(sms_outbox) == 2
