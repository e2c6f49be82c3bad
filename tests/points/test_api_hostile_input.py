"""POS API: input no till should send gets a JSON 400 or 413 naming the problem, never a 500,
and nothing is written. (The same inputs on PostgreSQL, where a NUL in text or an amount
past a column's precision is a database error, when the suite runs there.)"""

from __future__ import annotations

import datetime
import json
from zoneinfo import ZoneInfo

import pytest

from members.services import api_token_create
from points.models import LedgerTransaction, Purchase, Redemption, Return
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen_clock(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def headers(store):
    _token, raw = api_token_create(store=store, name="till 1")
    return {"Authorization": f"Bearer {raw}", "Accept-Language": "en"}


@pytest.fixture
def member(db):
    return MemberFactory()


def post(client, headers, url, data):
    body = data if isinstance(data, str) else json.dumps(data)
    return client.post(url, body, content_type="application/json", headers=headers)


def sale(member, **change):
    return {
        "member_no": member.member_no,
        "store": "SH001",
        "receipt_no": "R1001",
        "occurred_at": "2026-03-15T13:30:00",
        "amount": "128.50",
        **change,
    }


def written() -> tuple[int, ...]:
    return (
        Purchase.objects.count(),
        Return.objects.count(),
        Redemption.objects.count(),
        LedgerTransaction.objects.count(),
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"receipt_no": "R\x001"}, "receipt_no", "not allowed (NUL)"),
        ({"member_no": "\x00"}, "member_no", "not allowed (NUL)"),
        ({"lines": [{"sku": "A\x00", "amount": "128.50"}]}, "lines.0.sku", "NUL"),
        ({"amount": 1e30}, "amount", "at most 9999999999.99"),
        ({"amount": "1e30"}, "amount", "at most 9999999999.99"),
        ({"amount": "Infinity"}, "amount", "Enter a number"),
        ({"lines": [{"sku": "A", "amount": "128.50", "quantity": 1e30}]}, "lines.0.quantity", ""),
        ({"points_to_use": 10**30}, "points_to_use", "more than the amount"),
        ({"occurred_at": "0001-01-01T00:00:00"}, "occurred_at", "years 1900 and 2999"),
        ({"occurred_at": "0001-01-01T00:00:00+14:00"}, "occurred_at", "years 1900 and 2999"),
        ({"occurred_at": "9999-12-31T23:59:59"}, "occurred_at", "years 1900 and 2999"),
        ({"occurred_at": "9999-12-31T23:59:59-12:00"}, "occurred_at", "years 1900 and 2999"),
        (
            {"amount": "1001.00", "lines": [{"sku": "A", "amount": "1.00"}] * 1001},
            "lines",
            "at most 1000 items",
        ),
    ],
)
def test_a_purchase_no_till_would_send_gets_400_naming_the_field(
    client, headers, member, change, field, message
):
    response = post(client, headers, "/api/v1/purchases", sale(member, **change))

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["fields"]
    assert message in body["fields"][field]
    assert written() == (0, 0, 0, 0)


def test_a_thousand_lines_are_still_one_purchase(client, headers, member):
    lines = [{"sku": f"SKU{i}", "amount": "1.00"} for i in range(1000)]

    response = post(client, headers, "/api/v1/purchases", sale(member, amount="1000", lines=lines))

    assert response.status_code == 201
    assert Purchase.objects.get().lines.count() == 1000


def test_a_body_over_one_megabyte_gets_413_before_it_is_read(client, headers, member):
    padding = "x" * (1024 * 1024)
    response = post(client, headers, "/api/v1/purchases", sale(member, note=padding))

    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "detail": "The request body is larger than 1048576 bytes.",
    }
    assert written() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("url", "data", "field"),
    [
        (
            "/api/v1/returns",
            {
                "store": "SH001",
                "receipt_no": "X1",
                "original_receipt_no": "R\x00",
                "amount": "1",
                "occurred_at": "2026-03-15T13:00:00",
            },
            "original_receipt_no",
        ),
        (
            "/api/v1/returns",
            {
                "store": "SH001",
                "receipt_no": "X1",
                "original_receipt_no": "R1",
                "amount": "1",
                "occurred_at": "0001-01-01T00:00:00+14:00",
            },
            "occurred_at",
        ),
        (
            "/api/v1/returns",
            {
                "store": "SH001",
                "receipt_no": "X1",
                "original_receipt_no": "R1",
                "amount": 1e30,
                "occurred_at": "2026-03-15T13:00:00",
            },
            "amount",
        ),
        (
            "/api/v1/redemptions",
            {"member_no": "1", "reward": "CNY10", "idempotency_key": "k\x00"},
            "idempotency_key",
        ),
        ("/api/v1/coupons/AB%00CD/use", {"store": "SH001"}, "code"),
        ("/api/v1/coupons/ABCD/use", {"store": "SH001", "receipt_no": "R\x00"}, "receipt_no"),
    ],
)
def test_returns_redemptions_and_coupons_refuse_the_same_input(client, headers, url, data, field):
    response = post(client, headers, url, data)

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert written() == (0, 0, 0, 0)


@pytest.mark.parametrize("member_no", ["12%0034", "1" * 33])
def test_a_points_query_for_a_number_no_card_has_gets_400(client, headers, member_no):
    response = client.get(f"/api/v1/members/{member_no}/points", headers=headers)

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"member_no"}


@pytest.mark.parametrize("body", ["{member_no: 8", "[" * 100_000, "\x00", b"\xff\xfe"])
def test_a_body_that_is_not_json_says_so_in_the_tills_language(client, headers, body):
    response = client.post(
        "/api/v1/purchases", body, content_type="application/json", headers=headers
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid",
        "detail": "The request body is not valid JSON (UTF-8).",
    }
    chinese = client.post(
        "/api/v1/purchases",
        body,
        content_type="application/json",
        headers={**headers, "Accept-Language": "zh-hans"},
    )
    assert chinese.json()["detail"] == "请求正文不是有效的 JSON（UTF-8）。"
