"""POS API: a member's points and when they expire; the OpenAPI document of the points API."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.models import Member
from members.services import api_token_create
from points.models import EarningPolicy, Reward
from points.services import purchase_record, return_record, reward_redeem
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen_clock(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def get(client, store):
    _token, raw = api_token_create(store=store, name="till 1")

    def get(url):
        return client.get(url, headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"})

    return get


def url(member_no: str) -> str:
    return f"/api/v1/members/{member_no}/points"


def buy(member, store, receipt, amount, when):
    purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=when,
        now=when,
        amount=Decimal(amount),
    )


def test_points_show_balance_lifetime_and_every_expiry_date_soonest_first(get, store):
    member = MemberFactory()
    buy(member, store, "R1", "300", datetime.datetime(2026, 1, 10, 12, 0, tzinfo=SH))
    buy(member, store, "R2", "200", datetime.datetime(2026, 3, 1, 0, 30, tzinfo=SH))
    buy(member, store, "R3", "100", datetime.datetime(2026, 3, 14, 18, 0, tzinfo=SH))
    # A January lot earned on the last evening of the month in Shanghai (UTC: still the 31st).
    buy(member, store, "R4", "50", datetime.datetime(2026, 1, 31, 23, 30, tzinfo=SH))
    cny10 = Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="10元券",
        name_en="¥10 off",
        points_price=200,
        amount_off=Decimal("10"),
    )
    reward_redeem(member=member, reward=cny10, idempotency_key="k1")  # soonest lots first

    response = get(url(member.member_no))

    assert response.status_code == 200
    assert response.json() == {
        "available": 450,
        "pending": 0,
        "lifetime_earned": 650,
        "expiring": [
            {"date": "2027-01-31", "points": 150},
            {"date": "2027-03-31", "points": 300},
        ],
    }


def test_a_lot_earned_on_the_first_of_the_month_in_shanghai_expires_with_that_month(get, store):
    member = MemberFactory()
    # 2026-02-01 00:30 in Shanghai is still January in UTC.
    buy(member, store, "R1", "100", datetime.datetime(2026, 2, 1, 0, 30, tzinfo=SH))

    response = get(url(member.member_no))

    assert response.json()["expiring"] == [{"date": "2027-02-28", "points": 100}]


def test_pending_points_are_shown_apart_and_listed_as_expiring(get, store):
    EarningPolicy.objects.create(pending_days=7)
    member = MemberFactory()
    buy(member, store, "R1", "80", NOW - datetime.timedelta(days=10))
    buy(member, store, "R2", "120", NOW - datetime.timedelta(days=1))

    body = get(url(member.member_no)).json()

    assert (body["available"], body["pending"], body["lifetime_earned"]) == (80, 120, 200)
    assert body["expiring"] == [{"date": "2027-03-31", "points": 200}]


def test_past_expiry_dates_are_not_listed(get, store):
    member = MemberFactory()
    buy(member, store, "OLD", "70", datetime.datetime(2025, 2, 10, 12, 0, tzinfo=SH))
    buy(member, store, "NEW", "30", datetime.datetime(2026, 3, 10, 12, 0, tzinfo=SH))

    body = get(url(member.member_no)).json()

    assert body["expiring"] == [{"date": "2027-03-31", "points": 30}]


def test_a_negative_balance_is_shown_plainly(get, store):
    member = MemberFactory()
    buy(member, store, "R1", "500", NOW - datetime.timedelta(days=3))
    purchase_record(
        member=member,
        store=store,
        receipt_no="R2",
        occurred_at=NOW - datetime.timedelta(days=2),
        now=NOW - datetime.timedelta(days=2),
        amount=Decimal(5),
        points_to_use=500,
    )
    return_record(
        store=store,
        receipt_no="RT1",
        original_receipt_no="R1",
        amount=Decimal(500),
        occurred_at=NOW,
    )

    body = get(url(member.member_no)).json()

    assert body == {"available": -500, "pending": 0, "lifetime_earned": 0, "expiring": []}


def test_a_member_who_never_earned_has_zero_points(get):
    member = MemberFactory()

    response = get(url(member.member_no))

    assert response.status_code == 200
    assert response.json() == {"available": 0, "pending": 0, "lifetime_earned": 0, "expiring": []}


def test_a_frozen_member_still_shows_points(get, store):
    member = MemberFactory()
    buy(member, store, "R1", "100", NOW - datetime.timedelta(days=1))
    Member.objects.filter(pk=member.pk).update(status=Member.Status.FROZEN)

    assert get(url(member.member_no)).json()["available"] == 100


def test_unknown_closed_or_mistyped_members_get_404(get):
    member = MemberFactory()
    closed = MemberFactory(status=Member.Status.CLOSED)
    wrong = member.member_no[:-1] + str((int(member.member_no[-1]) + 1) % 10)

    for member_no in ["800000000000", closed.member_no, wrong, "abc"]:
        response = get(url(member_no))
        assert response.status_code == 404, member_no
        assert response.json() == {"error": "not_found", "detail": "No member matches."}


def test_points_without_a_token_get_401(client):
    member = MemberFactory()

    response = client.get(url(member.member_no))

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


# --- The contract -------------------------------------------------------------------------


EXPECTED = {
    ("/api/v1/purchases", "post"): {"200", "201", "400", "401", "403", "404", "409", "422"},
    ("/api/v1/returns", "post"): {"200", "201", "400", "401", "403", "404", "409", "422"},
    ("/api/v1/members/{member_no}/points", "get"): {"200", "401", "404"},
    ("/api/v1/rewards", "get"): {"200", "401"},
    ("/api/v1/redemptions", "post"): {"200", "201", "400", "401", "404", "409", "422"},
    ("/api/v1/coupons/{code}/use", "post"): {"200", "400", "401", "403", "404", "409", "422"},
}


def test_the_openapi_document_lists_every_points_operation_and_its_responses(client):
    document = client.get("/api/v1/openapi.json").json()

    for (path, method), codes in EXPECTED.items():
        operation = document["paths"][path][method]
        assert codes <= set(operation["responses"]), (path, method)
        assert operation["description"], (path, method)
        assert operation["security"] == [{"ApiTokenAuth": []}], (path, method)
