"""POS API: bearer tokens, the shape of every error, unknown URLs and the OpenAPI document."""

from __future__ import annotations

import datetime
import hashlib

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.models import ApiToken, Member
from members.services import api_token_create, api_token_revoke
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

LOOKUP_URL = "/api/v1/members/lookup"


@pytest.fixture
def member():
    return MemberFactory(phone="+8613812345678")


def lookup(client, member, authorization: str | None):
    headers = {"Accept-Language": "en"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return client.get(LOOKUP_URL, {"member_no": member.member_no}, headers=headers)


def test_a_valid_token_is_let_in(client, store, member):
    _token, raw = api_token_create(store=store)

    response = lookup(client, member, f"Bearer {raw}")

    assert response.status_code == 200


def test_the_bearer_scheme_is_case_insensitive(client, store, member):
    _token, raw = api_token_create(store=store)

    assert lookup(client, member, f"bearer {raw}").status_code == 200


def test_no_authorization_header_gets_401_saying_how_to_send_the_token(client, member):
    response = lookup(client, member, None)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "error": "unauthorized",
        "detail": "Send the API token in the header “Authorization: Bearer <token>”.",
    }


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Token abc", "Bearer", "Bearer ", ""]
)
def test_a_malformed_authorization_header_gets_401(client, store, member, authorization):
    api_token_create(store=store)

    response = lookup(client, member, authorization)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_an_unknown_token_gets_401(client, store, member):
    _token, raw = api_token_create(store=store)

    response = lookup(client, member, f"Bearer {raw}x")

    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthorized",
        "detail": "The API token is invalid or has been revoked.",
    }


def test_a_revoked_token_gets_401(client, store, member):
    token, raw = api_token_create(store=store)
    assert lookup(client, member, f"Bearer {raw}").status_code == 200

    api_token_revoke(token=token)
    response = lookup(client, member, f"Bearer {raw}")

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_revoking_twice_keeps_the_first_revocation_time(store):
    token, _raw = api_token_create(store=store)
    first = api_token_revoke(token=token).revoked_at

    assert api_token_revoke(token=token).revoked_at == first


def test_a_token_of_a_store_that_closed_gets_401(client, store, member):
    _token, raw = api_token_create(store=store)
    store.is_active = False
    store.save()

    assert lookup(client, member, f"Bearer {raw}").status_code == 401


def test_only_the_hash_of_the_token_is_stored(store):
    token, raw = api_token_create(store=store)

    token.refresh_from_db()
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.values().get().values()]
    assert raw not in stored
    assert raw.startswith(token.prefix)
    assert len(raw) >= 40


def test_each_token_is_different(store):
    raws = {api_token_create(store=store)[1] for _ in range(5)}

    assert len(raws) == 5


def test_last_used_is_recorded_at_most_once_a_minute(client, store, member):
    token, raw = api_token_create(store=store)
    start = datetime.datetime(2026, 3, 15, 10, 0, 0, tzinfo=datetime.UTC)

    with time_machine.travel(start, tick=False):
        lookup(client, member, f"Bearer {raw}")
    token.refresh_from_db()
    assert token.last_used_at == start

    with time_machine.travel(start + datetime.timedelta(seconds=59), tick=False):
        lookup(client, member, f"Bearer {raw}")
    token.refresh_from_db()
    assert token.last_used_at == start

    later = start + datetime.timedelta(seconds=61)
    with time_machine.travel(later, tick=False):
        lookup(client, member, f"Bearer {raw}")
    token.refresh_from_db()
    assert token.last_used_at == later


def test_a_request_within_the_minute_does_not_write(client, store, member):
    token, raw = api_token_create(store=store)
    lookup(client, member, f"Bearer {raw}")
    token.refresh_from_db()
    assert token.last_used_at is not None

    with CaptureQueriesContext(connection) as queries:
        lookup(client, member, f"Bearer {raw}")
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []


def test_a_pos_needs_no_csrf_token(store):
    _token, raw = api_token_create(store=store)
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        "/api/v1/members",
        {"phone": "13812345678", "name": "张伟", "store": "SH001"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 201
    assert Member.objects.count() == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/"),
        ("get", "/api/v1/nothing-here"),
        ("post", "/api/v1/orders"),
        ("get", "/api/v1/members/"),
        ("delete", "/api/v1/members/lookup/extra"),
    ],
)
def test_an_unknown_url_under_the_api_gets_a_json_404(client, store, method, path):
    _token, raw = api_token_create(store=store)

    for headers in ({}, {"Authorization": f"Bearer {raw}"}):
        response = getattr(client, method)(path, headers={**headers, "Accept-Language": "en"})
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json; charset=utf-8"
        assert response.json() == {
            "error": "not_found",
            "detail": "There is no such API endpoint.",
        }


def test_a_known_url_with_the_wrong_method_gets_a_json_405(client, store):
    _token, raw = api_token_create(store=store)

    response = client.get(
        "/api/v1/members", headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"}
    )

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {
        "error": "method_not_allowed",
        "detail": "This endpoint does not accept GET.",
    }


def test_the_openapi_document_lists_the_operations_and_their_errors(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    enrol = paths["/api/v1/members"]["post"]
    lookup_op = paths["/api/v1/members/lookup"]["get"]
    assert set(enrol["responses"]) == {"201", "400", "401", "403", "409", "413"}
    assert set(lookup_op["responses"]) == {"200", "400", "401", "404"}
    assert "forbidden_store" in enrol["description"]
    assert {p["name"] for p in lookup_op["parameters"]} == {"phone", "member_no"}
    # Only the real operations are documented, not the JSON 404 fallbacks.
    assert {path for path in paths if path.startswith("/api/v1/members")} == {
        "/api/v1/members",
        "/api/v1/members/lookup",
        "/api/v1/members/{member_no}/points",  # points/api.py
    }
    assert "/api/v1/" not in paths and not any("{rest}" in path for path in paths)
    schemes = schema["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    assert enrol["security"] == lookup_op["security"] == [{name: []} for name in schemes]


def test_the_openapi_document_describes_the_member_object_and_the_error_bodies(client):
    schema = client.get("/api/v1/openapi.json").json()
    components = schema["components"]["schemas"]

    def ref_of(operation: dict, status: str) -> dict:
        ref = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        return components[ref.rsplit("/", 1)[-1]]

    enrol = schema["paths"]["/api/v1/members"]["post"]
    member = ref_of(enrol, "201")
    assert set(member["properties"]) == {
        "member_no",
        "phone",
        "name",
        "tier",
        "points",
        "promotions",
    }
    assert set(ref_of(enrol, "409")["properties"]) == {"error", "detail", "member_no"}
    assert set(ref_of(enrol, "400")["properties"]) == {"error", "detail", "fields"}
    assert set(ref_of(enrol, "401")["properties"]) == {"error", "detail"}


def test_the_time_is_stored_aware(store):
    # last_used_at is compared across requests; a naive time would break the minute check.
    token, _raw = api_token_create(store=store)
    assert timezone.is_aware(token.created_at)
