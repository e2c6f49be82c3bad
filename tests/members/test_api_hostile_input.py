"""POS API for members: input no till should send gets a JSON 400 naming the field, never a
500 (on PostgreSQL a NUL in text, or an e-mail longer than its column, is a database error)."""

from __future__ import annotations

import json

import pytest

from members.models import Member
from members.services import api_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def headers(store):
    _token, raw = api_token_create(store=store, name="till 1")
    return {"Authorization": f"Bearer {raw}", "Accept-Language": "en"}


def enrol(**change):
    return {"phone": "13912345678", "name": "王小明", "store": "SH001", **change}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "王\x00小明"}, "name", "not allowed (NUL)"),
        ({"phone": "139\x0012345678"}, "phone", "not allowed (NUL)"),
        ({"store": "SH001\x00"}, "store", "not allowed (NUL)"),
        ({"email": "a@example.com\x00"}, "email", "not allowed (NUL)"),
        ({"email": "a" * 243 + "@example.com"}, "email", "at most 254 characters"),
        ({"name": "王" * 101}, "name", "at most 100 characters"),
        ({"phone": ""}, "phone", "This field is required."),
        ({"birthday": "0001-01-01"}, "birthday", "too early"),
        ({"birthday": "9999-12-31"}, "birthday", "not in the future"),
    ],
)
def test_an_enrolment_no_till_would_send_gets_400_naming_the_field(
    client, headers, change, field, message
):
    response = client.post(
        "/api/v1/members",
        json.dumps(enrol(**change)),
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert message in response.json()["fields"][field]
    assert not Member.objects.exists()


def test_an_email_of_254_characters_is_accepted(client, headers):
    email = "a" * 242 + "@example.com"

    response = client.post(
        "/api/v1/members",
        json.dumps(enrol(email=email)),
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 201
    assert Member.objects.get().email == email


@pytest.mark.parametrize(
    "params",
    [{"phone": "139\x0012345678"}, {"member_no": "8\x00"}, {"phone": "1" * 33}],
)
def test_a_lookup_no_till_would_send_gets_400(client, headers, params):
    response = client.get("/api/v1/members/lookup", params, headers=headers)

    assert response.status_code == 400
    assert set(response.json()["fields"]) == set(params)
