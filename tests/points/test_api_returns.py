"""POS API: returns reverse a purchase's points in proportion, as a till sees it."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.services import api_token_create
from points.models import Account, Entry, LedgerTransaction, Lot, LotMovement, Purchase, Return
from points.services import purchase_record
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)
URL = "/api/v1/returns"


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


def buy(member, store, amount, receipt="R1001", points_to_use=0):
    return purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=NOW - datetime.timedelta(days=2),
        amount=Decimal(amount),
        points_to_use=points_to_use,
    ).purchase


@pytest.fixture
def purchase(member, store):
    return buy(member, store, "200.00")


def refund(**change):
    return {
        "store": "SH001",
        "receipt_no": "RT1",
        "original_receipt_no": "R1001",
        "amount": "50.00",
        "occurred_at": "2026-03-15T13:00:00",
        **change,
    }


def written():
    return (
        Return.objects.count(),
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        LotMovement.objects.count(),
        sorted(Lot.objects.values_list("remaining", flat=True)),
        sorted(Account.objects.values_list("balance", "debt")),
        sorted(Purchase.objects.values_list("returned_amount", flat=True)),
    )


def test_a_partial_return_reverses_points_in_proportion(pos, purchase):
    response = pos.post(refund())

    assert response.status_code == 201
    assert response.json() == {
        "points_reversed": 50,
        "history": False,
        "message": "",
        "balance": {"available": 150, "pending": 0},
    }
    purchase.refresh_from_db()
    assert purchase.returned_amount == Decimal("50.00")
    the_return = Return.objects.get()
    assert (the_return.receipt_no, the_return.amount) == ("RT1", Decimal("50.00"))
    assert the_return.occurred_at == datetime.datetime(2026, 3, 15, 13, 0, tzinfo=SH)


def test_reversed_points_are_rounded_down_and_two_halves_make_the_whole(pos, member, store):
    buy(member, store, "99.00")  # earns 99

    first = pos.post(refund(amount="49.50"))
    second = pos.post(refund(receipt_no="RT2", amount="49.50"))

    assert first.json()["points_reversed"] == 49
    assert second.json()["points_reversed"] == 50
    assert second.json()["balance"] == {"available": 0, "pending": 0}


def test_a_return_after_the_points_were_spent_shows_a_negative_balance(pos, member, store):
    buy(member, store, "1000.00", receipt="BIG")
    buy(member, store, "10.00", receipt="SPEND", points_to_use=1000)

    response = pos.post(refund(original_receipt_no="BIG", amount="1000.00"))

    assert response.status_code == 201
    assert response.json() == {
        "points_reversed": 1000,
        "history": False,
        "message": "",
        "balance": {"available": -1000, "pending": 0},
    }
    assert Account.objects.get(member=member).debt == 1000


def test_a_replayed_return_gets_200_with_the_same_body_and_reverses_nothing_more(pos, purchase):
    first = pos.post(refund())
    after_first = written()

    again = pos.post(refund(occurred_at="2026-03-15T05:00:00Z"))  # the same instant

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert written() == after_first


def test_replaying_a_full_return_is_not_refused_as_too_much(pos, purchase):
    pos.post(refund(amount="200.00"))

    again = pos.post(refund(amount="200.00"))

    assert again.status_code == 200
    assert again.json()["points_reversed"] == 200


@pytest.mark.parametrize(
    "change",
    [{"amount": "60.00"}, {"occurred_at": "2026-03-15T13:05:00"}],
)
def test_the_same_return_receipt_with_different_details_gets_409(pos, purchase, change):
    pos.post(refund())
    before = written()

    response = pos.post(refund(**change))

    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_conflict"
    assert written() == before


def test_returning_more_than_was_bought_gets_422(pos, purchase):
    before = written()

    response = pos.post(refund(amount="200.01"))

    assert response.status_code == 422
    assert response.json() == {
        "error": "return_exceeds_purchase",
        "detail": "The amount is more than what is left of the purchase to return.",
    }
    assert written() == before


def test_returning_more_than_is_left_after_an_earlier_return_gets_422(pos, purchase):
    pos.post(refund(amount="150.00"))
    before = written()

    response = pos.post(refund(receipt_no="RT2", amount="50.01"))

    assert response.status_code == 422
    assert response.json()["error"] == "return_exceeds_purchase"
    assert written() == before


@pytest.mark.parametrize(
    "occurred_at", ["2026-03-13T13:59:00", "2026-03-13T05:59:59Z", "2025-03-13T14:00:00"]
)
def test_a_return_dated_before_its_purchase_gets_422_and_writes_nothing(pos, purchase, occurred_at):
    before = written()

    response = pos.post(refund(occurred_at=occurred_at))

    assert response.status_code == 422
    assert response.json() == {
        "error": "return_before_purchase",
        "detail": "A return cannot be dated before its purchase (2026-03-13 14:00).",
    }
    assert written() == before


@pytest.mark.parametrize("occurred_at", ["2026-03-15T14:05:01", "2999-01-01T00:00:00"])
def test_a_return_dated_ahead_of_the_clock_gets_422_and_writes_nothing(pos, purchase, occurred_at):
    before = written()

    response = pos.post(refund(occurred_at=occurred_at))

    assert response.status_code == 422
    assert response.json() == {
        "error": "occurred_at_out_of_range",
        "detail": "A return cannot be dated later than 2026-03-15 14:05 (Asia/Shanghai time).",
    }
    assert written() == before


def test_a_return_five_minutes_ahead_of_the_clock_is_recorded(pos, purchase):
    response = pos.post(refund(occurred_at="2026-03-15T14:05:00"))

    assert response.status_code == 201


def test_a_return_at_the_very_time_of_its_purchase_is_recorded(pos, purchase):
    response = pos.post(refund(occurred_at="2026-03-13T06:00:00Z"))  # 14:00 in Shanghai

    assert response.status_code == 201
    assert response.json()["points_reversed"] == 50


def test_an_unknown_original_receipt_gets_404(pos, purchase):
    before = written()

    response = pos.post(refund(original_receipt_no="R9999"))

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "There is no purchase with this receipt number at this store.",
    }
    assert written() == before


def test_a_purchase_at_another_store_is_found_with_original_store(pos, member):
    beijing = StoreFactory(code="BJ001")
    buy(member, beijing, "200.00")

    not_here = pos.post(refund())
    response = pos.post(refund(original_store="BJ001"))

    assert not_here.status_code == 404
    assert response.status_code == 201
    assert response.json()["points_reversed"] == 50
    assert Return.objects.get().store.code == "SH001"


def test_a_token_for_one_store_cannot_record_a_return_at_another(pos, purchase):
    StoreFactory(code="BJ001")
    before = written()

    response = pos.post(refund(store="BJ001"))

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden_store"
    assert written() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-10.00"}, "amount"),
        ({"amount": "10.001"}, "amount"),
        ({"receipt_no": ""}, "receipt_no"),
        ({"original_receipt_no": " "}, "original_receipt_no"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"original_store": "XX999"}, "original_store"),
        ({"store": "XX999"}, "store"),
    ],
)
def test_bad_input_gets_400_naming_the_field_and_writes_nothing(pos, purchase, change, field):
    before = written()

    response = pos.post(refund(**change))

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["fields"]
    assert written() == before


def test_a_return_without_a_token_gets_401(client, purchase):
    response = client.post(URL, refund(), content_type="application/json")

    assert response.status_code == 401
    assert Return.objects.count() == 0


def test_a_return_of_a_purchase_imported_as_history_reverses_nothing_and_says_so(
    pos, member, store
):
    """A purchase brought over from another system earned no points here."""
    from points.earning import earning_rules
    from points.posting import MemberFacts, purchase_plan
    from points.posting.writers import postings_write

    when = NOW - datetime.timedelta(days=400)  # from before the points' life: no matter
    posting = purchase_plan(
        member=MemberFacts(member_id=member.pk, member_no=member.member_no),
        store_id=store.pk,
        store_code=store.code,
        receipt_no="OLD-1",
        channel="store",
        occurred_at=when,
        amount=Decimal("300.00"),
        rules=earning_rules(),
        history=True,
    )
    postings_write(postings=[posting], now=NOW, upgrades=False)

    response = pos.post(refund(receipt_no="RT-OLD-1", original_receipt_no="OLD-1"))

    assert response.status_code == 201
    body = response.json()
    assert (body["points_reversed"], body["history"]) == (0, True)
    assert body["message"] == "imported as history: no points to reverse"
