"""POS API: recording purchases, as a till sees it."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from members.models import AuditEntry, Member
from members.services import api_token_create, member_close
from points.models import (
    Account,
    CategoryRate,
    EarningPolicy,
    Entry,
    LedgerTransaction,
    Lot,
    Purchase,
    PurchaseLine,
)
from points.services import purchase_record, return_record
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)
URL = "/api/v1/purchases"


@pytest.fixture(autouse=True)
def frozen_clock(time_machine):
    time_machine.move_to(NOW, tick=False)


class Till:
    def __init__(self, client, raw_token: str) -> None:
        self.client = client
        self.raw_token = raw_token

    def post(self, data, url=URL):
        body = data if isinstance(data, str) else json.dumps(data)
        return self.client.post(
            url,
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.raw_token}", "Accept-Language": "en"},
        )


@pytest.fixture
def pos(client, store):
    _token, raw = api_token_create(store=store, name="till 1")
    return Till(client, raw)


@pytest.fixture
def member(db):
    return MemberFactory()


def sale(member, **change):
    return {
        "member_no": member.member_no,
        "store": "SH001",
        "receipt_no": "R1001",
        "occurred_at": "2026-03-15T13:30:00",
        "amount": "128.50",
        **change,
    }


def give_points(member, store, points, receipt="OPENING"):
    purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=NOW - datetime.timedelta(days=1),
        amount=Decimal(points),
    )


def written():
    """Every row a purchase could write, and the member balances."""
    return (
        Purchase.objects.count(),
        PurchaseLine.objects.count(),
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        Lot.objects.count(),
        Account.objects.count(),
        sorted(Account.objects.values_list("balance", flat=True)),
        AuditEntry.objects.count(),
    )


# --- Recording --------------------------------------------------------------------------


def test_a_purchase_earns_points_and_answers_with_balance_and_tier(pos, member):
    response = pos.post(sale(member))

    assert response.status_code == 201
    purchase = Purchase.objects.get()
    assert response.json() == {
        "purchase_id": purchase.pk,
        "points_earned": 128,
        "points_used": 0,
        "balance": {"available": 128, "pending": 0},
        "tier": {
            "code": "regular",
            "name": "Regular",
            "discount_rate": "0.00",
            "valid_until": None,
        },
    }
    assert purchase.member == member
    assert purchase.store.code == "SH001"
    assert purchase.channel == "store"
    assert purchase.amount == Decimal("128.50")


@pytest.mark.parametrize(
    "occurred_at",
    ["2026-03-15T13:30:00", "2026-03-15T13:30:00+08:00", "2026-03-15T05:30:00Z"],
)
def test_occurred_at_without_an_offset_is_shanghai_time(pos, member, occurred_at):
    pos.post(sale(member, occurred_at=occurred_at))

    assert Purchase.objects.get().occurred_at == datetime.datetime(2026, 3, 15, 13, 30, tzinfo=SH)


def test_lines_are_kept_and_excluded_categories_earn_nothing(pos, member):
    CategoryRate.objects.create(category="gift_card", rate=0)
    lines = [
        {"sku": "GC100", "category": "gift_card", "quantity": 1, "amount": "100.00"},
        {"sku": "TEE", "category": "apparel", "quantity": 2, "amount": 59.9},
    ]

    response = pos.post(sale(member, amount="159.90", lines=lines, channel="mini_program"))

    assert response.status_code == 201
    assert response.json()["points_earned"] == 59
    purchase = Purchase.objects.get()
    assert purchase.channel == "mini_program"
    assert sorted(purchase.lines.values_list("sku", "category", "quantity", "amount")) == [
        ("GC100", "gift_card", Decimal("1.000"), Decimal("100.00")),
        ("TEE", "apparel", Decimal("2.000"), Decimal("59.90")),
    ]


def test_points_as_payment_are_spent_and_only_the_rest_earns(pos, member, store):
    give_points(member, store, 1500)

    response = pos.post(sale(member, amount="100.00", points_to_use=500))

    assert response.status_code == 201
    body = response.json()
    assert (body["points_used"], body["points_earned"]) == (500, 95)
    assert body["balance"] == {"available": 1500 - 500 + 95, "pending": 0}
    purchase = Purchase.objects.get(receipt_no="R1001")
    assert purchase.payment_transaction.member_amount == -500


def test_purchase_points_wait_the_pending_days(pos, member):
    EarningPolicy.objects.create(pending_days=7)

    response = pos.post(sale(member))

    assert response.json()["balance"] == {"available": 0, "pending": 128}


def test_the_same_receipt_number_at_two_stores_is_two_purchases(pos, client, member):
    other_store = StoreFactory(code="BJ001")
    _token, raw = api_token_create(store=other_store)
    beijing = Till(client, raw)

    first = pos.post(sale(member))
    second = beijing.post(sale(member, store="BJ001"))

    assert first.status_code == second.status_code == 201
    assert Purchase.objects.count() == 2
    assert second.json()["balance"]["available"] == 256


# --- Replays ------------------------------------------------------------------------------


def test_a_replayed_purchase_gets_200_with_the_same_body_and_posts_nothing(pos, member):
    first = pos.post(sale(member))
    after_first = written()

    second = pos.post(sale(member))
    third = pos.post(sale(member, occurred_at="2026-03-15T05:30:00Z"))  # the same instant

    assert first.status_code == 201
    assert second.status_code == third.status_code == 200
    assert second.json() == third.json() == first.json()
    assert written() == after_first


def test_a_replay_reports_the_first_purchases_points_and_the_current_balance(pos, member, store):
    first = pos.post(sale(member)).json()
    give_points(member, store, 1000, receipt="LATER")

    again = pos.post(sale(member))

    assert again.status_code == 200
    body = again.json()
    assert body["purchase_id"] == first["purchase_id"]
    assert (body["points_earned"], body["points_used"]) == (128, 0)
    assert body["balance"] == {"available": 1128, "pending": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "128.60"},
        {"occurred_at": "2026-03-15T13:31:00"},
        {"channel": "online"},
        {"lines": [{"sku": "TEE", "amount": "128.50"}]},
        {"points_to_use": 100},
    ],
)
def test_the_same_receipt_with_different_details_gets_409(pos, member, store, change):
    give_points(member, store, 1000)
    pos.post(sale(member))
    before = written()

    response = pos.post(sale(member, **change))

    assert response.status_code == 409
    assert response.json() == {
        "error": "idempotency_conflict",
        "detail": "This receipt number or idempotency key was already used for a different "
        "request.",
    }
    assert written() == before


def test_the_same_receipt_for_another_member_gets_409(pos, member):
    pos.post(sale(member))
    before = written()

    response = pos.post(sale(MemberFactory()))

    assert response.status_code == 409
    assert written() == before


# --- Refusals -----------------------------------------------------------------------------


def test_an_unknown_member_gets_404(pos, member):
    before = written()

    response = pos.post(sale(member, member_no="800000000000"))

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No member matches."}
    assert written() == before


def test_a_member_number_with_a_wrong_check_digit_gets_404_never_someone_else(pos, member):
    wrong = member.member_no[:-1] + str((int(member.member_no[-1]) + 1) % 10)
    MemberFactory(member_no=wrong)  # even a row with that very number is not matched
    before = written()

    response = pos.post(sale(member, member_no=wrong))

    assert response.status_code == 404
    assert written() == before


def test_a_closed_member_is_not_found(pos, member, staff_user):
    member_close(member=member, actor=staff_user)
    before = written()

    response = pos.post(sale(member))

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert written() == before


def test_a_frozen_member_gets_422_member_inactive(pos):
    frozen = MemberFactory(status=Member.Status.FROZEN)
    before = written()

    response = pos.post(sale(frozen))

    assert response.status_code == 422
    assert response.json() == {
        "error": "member_inactive",
        "detail": "This member's account is frozen: it cannot earn or spend.",
    }
    assert written() == before


def test_more_points_than_available_gets_422_insufficient_points(pos, member, store):
    give_points(member, store, 450)
    before = written()

    response = pos.post(sale(member, amount="100.00", points_to_use=500))

    assert response.status_code == 422
    assert response.json() == {
        "error": "insufficient_points",
        "detail": "This needs 500 points; the member has 450 available.",
    }
    assert written() == before


def test_points_cannot_be_used_while_the_balance_is_negative(pos, member, store):
    give_points(member, store, 1000, receipt="BIG")
    pos.post(sale(member, receipt_no="SPEND", amount="10.00", points_to_use=1000))
    give_points(member, store, 300, receipt="SMALL")
    return_record(
        store=store,
        receipt_no="RET1",
        original_receipt_no="BIG",
        amount=Decimal(1000),
        occurred_at=NOW,
    )  # takes back 1000 points of which only 300 are left: 700 negative
    assert Account.objects.get(member=member).balance == -700
    before = written()

    response = pos.post(sale(member, amount="100.00", points_to_use=100))

    assert response.status_code == 422
    assert response.json()["error"] == "negative_balance"
    assert "700" in response.json()["detail"]
    assert written() == before


# --- Limits -------------------------------------------------------------------------------


def test_a_purchase_of_exactly_the_cap_is_recorded(pos, member):
    response = pos.post(sale(member, amount="200000.00"))

    assert response.status_code == 201
    assert response.json()["points_earned"] == 200_000


@pytest.mark.parametrize("amount", ["200000.01", "250000", "9999999999.99"])
def test_a_purchase_over_the_cap_gets_422_amount_over_limit_and_writes_nothing(pos, member, amount):
    before = written()

    response = pos.post(sale(member, amount=amount))

    assert response.status_code == 422
    assert response.json() == {
        "error": "amount_over_limit",
        "detail": "A purchase can be at most ¥200,000.00.",
    }
    assert written() == before


def test_the_cap_is_a_setting(pos, member, settings):
    settings.POINTS_PURCHASE_MAX_AMOUNT = 100

    over = pos.post(sale(member, amount="100.01"))
    at_cap = pos.post(sale(member, receipt_no="R1002", amount="100.00"))

    assert over.json()["error"] == "amount_over_limit"
    assert over.json()["detail"] == "A purchase can be at most ¥100.00."
    assert at_cap.status_code == 201


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-02-13T14:00:00",  # 30 days back to the minute
        "2026-03-15T14:05:00",  # 5 minutes ahead: a till's clock running fast
    ],
)
def test_a_purchase_at_the_edges_of_the_window_is_recorded(pos, member, occurred_at):
    response = pos.post(sale(member, occurred_at=occurred_at))

    assert response.status_code == 201


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-02-13T13:59:00",  # 30 days and a minute back
        "2025-03-15T14:00:00",  # a year back: the wrong year typed
        "1970-01-01T00:00:00Z",  # a till that lost its clock
        "2026-03-15T14:06:00",  # 6 minutes ahead
        "2027-03-15T14:00:00",  # a year ahead
    ],
)
def test_a_purchase_outside_the_window_gets_422_occurred_at_out_of_range(pos, member, occurred_at):
    before = written()

    response = pos.post(sale(member, occurred_at=occurred_at))

    assert response.status_code == 422
    assert response.json() == {
        "error": "occurred_at_out_of_range",
        "detail": "The time of purchase must be between 2026-02-13 14:00 and 2026-03-15 "
        "14:05 (Asia/Shanghai time).",
    }
    assert written() == before


def test_the_window_is_a_setting(pos, member, settings):
    settings.POINTS_PURCHASE_MAX_DAYS_BACK = 1
    settings.POINTS_PURCHASE_MAX_MINUTES_AHEAD = 0

    back = pos.post(sale(member, occurred_at="2026-03-14T13:59:00"))
    ahead = pos.post(sale(member, occurred_at="2026-03-15T14:01:00"))
    inside = pos.post(sale(member, occurred_at="2026-03-14T14:00:00"))

    assert back.json()["error"] == ahead.json()["error"] == "occurred_at_out_of_range"
    assert inside.status_code == 201


def test_a_retry_after_the_window_moved_on_gets_the_first_answer(pos, member, time_machine):
    first = pos.post(sale(member, amount="128.50"))
    time_machine.move_to(NOW + datetime.timedelta(days=45), tick=False)

    again = pos.post(sale(member))
    changed = pos.post(sale(member, amount="128.60"))
    other = pos.post(sale(member, receipt_no="R1002"))

    assert again.status_code == 200
    assert again.json()["purchase_id"] == first.json()["purchase_id"]
    assert changed.json()["error"] == "idempotency_conflict"
    assert other.json()["error"] == "occurred_at_out_of_range"
    assert Purchase.objects.count() == 1


def test_the_limits_say_what_they_are_in_chinese(pos, member):
    response = pos.client.post(
        URL,
        json.dumps(sale(member, amount="300000")),
        content_type="application/json",
        headers={"Authorization": f"Bearer {pos.raw_token}", "Accept-Language": "zh-hans"},
    )

    assert response.json()["detail"] == "单笔消费金额最多为 ¥200,000.00。"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"points_to_use": 150}, "points_to_use"),
        ({"points_to_use": -100}, "points_to_use"),
        ({"points_to_use": 20000}, "points_to_use"),  # ¥200 of points for a ¥128.50 sale
        ({"points_to_use": 1.5}, "points_to_use"),
        ({"lines": [{"sku": "A", "amount": "100.00"}]}, "lines"),
        ({"lines": [{"sku": " ", "amount": "128.50"}]}, "lines.0.sku"),
        ({"lines": [{"sku": "A", "amount": "128.50", "quantity": 0}]}, "lines.0.quantity"),
        (
            {"lines": [{"sku": "A", "amount": "-1.00"}, {"sku": "B", "amount": "129.50"}]},
            "lines.0.amount",
        ),
        ({"lines": [{"sku": "A"}]}, "lines.0.amount"),
        ({"amount": "128.505"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "100000000000"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"receipt_no": "  "}, "receipt_no"),
        ({"receipt_no": "R" * 65}, "receipt_no"),
        ({"channel": "phone"}, "channel"),
        ({"occurred_at": "15/03/2026"}, "occurred_at"),
        ({"store": "XX999"}, "store"),
        ({"member_no": 800000000000}, "member_no"),
    ],
)
def test_bad_input_gets_400_naming_the_field_and_writes_nothing(pos, member, change, field):
    before = written()

    response = pos.post(sale(member, **change))

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["fields"]
    assert field in body["detail"]
    assert written() == before


def test_lines_that_do_not_add_up_say_by_how_much(pos, member):
    response = pos.post(sale(member, lines=[{"sku": "A", "amount": 100}]))

    assert response.json()["fields"] == {
        "lines": "The lines add up to ¥100.00, not the amount ¥128.50."
    }


def test_points_in_the_wrong_steps_say_which_steps(pos, member, store):
    give_points(member, store, 1000)

    response = pos.post(sale(member, points_to_use=150))

    assert response.json()["fields"] == {"points_to_use": "Points are used in steps of 100."}


@pytest.mark.parametrize("missing", ["member_no", "store", "receipt_no", "occurred_at", "amount"])
def test_a_missing_required_field_gets_400(pos, member, missing):
    payload = sale(member)
    del payload[missing]

    response = pos.post(payload)

    assert response.status_code == 400
    assert response.json()["fields"] == {missing: "This field is required."}
    assert Purchase.objects.count() == 0


def test_a_body_that_is_not_json_gets_400(pos):
    response = pos.post("{member_no: 8")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert Purchase.objects.count() == 0


def test_a_token_for_one_store_cannot_record_at_another(pos, member):
    StoreFactory(code="BJ001")
    before = written()

    response = pos.post(sale(member, store="BJ001"))

    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden_store",
        "detail": "This API token may only be used at store SH001.",
    }
    assert written() == before


def test_recording_without_a_token_gets_401(client, member, store):
    response = client.post(URL, sale(member), content_type="application/json")

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert Purchase.objects.count() == 0


def test_a_revoked_or_unknown_token_gets_401(client, member, store):
    response = client.post(
        URL,
        sale(member),
        content_type="application/json",
        headers={"Authorization": "Bearer not-a-token"},
    )

    assert response.status_code == 401
    assert Purchase.objects.count() == 0


def test_the_recorded_time_is_the_servers_not_the_tills(pos, member):
    pos.post(sale(member, occurred_at="2026-03-14T09:00:00"))

    purchase = Purchase.objects.get()
    assert purchase.recorded_at == timezone.now()
    assert purchase.occurred_at == datetime.datetime(2026, 3, 14, 9, 0, tzinfo=SH)


@pytest.fixture
def figures_unreadable(monkeypatch):
    """The member's figures cannot be read once the purchase is written (the member object
    fails, as a database gone away would)."""
    from points import api

    def broken(*, member):
        raise RuntimeError("the tier service is down")

    monkeypatch.setattr(api, "member_summary", broken)


def test_a_recorded_purchase_answers_201_with_what_is_in_hand_when_figures_fail(
    pos, member, figures_unreadable, caplog
):
    response = pos.post(sale(member))

    assert response.status_code == 201
    purchase = Purchase.objects.get()
    assert response.json() == {
        "purchase_id": purchase.pk,
        "points_earned": 128,
        "points_used": 0,
        "balance": None,
        "tier": None,
    }
    assert "the tier service is down" in caplog.text
