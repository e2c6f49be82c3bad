"""POS API: accepting a coupon at the till."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.services import api_token_create
from points.models import Coupon, Reward
from points.services import purchase_record, redemption_void, reward_redeem
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def use(client, store):
    _token, raw = api_token_create(store=store, name="till 1")

    def use(code, data=None):
        body = {"store": "SH001", "receipt_no": "S2001"} if data is None else data
        return client.post(
            f"/api/v1/coupons/{code}/use",
            json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"},
        )

    return use


@pytest.fixture
def coupon(store):
    reward = Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal("10"),
    )
    member = MemberFactory()
    purchase_record(
        member=member, store=store, receipt_no="R1", occurred_at=NOW, amount=Decimal(1000)
    )
    return reward_redeem(member=member, reward=reward, idempotency_key="k1").coupon


def state(coupon):
    coupon.refresh_from_db()
    return coupon.status, coupon.used_at, coupon.used_store_id, coupon.used_receipt_no


def test_accepting_a_coupon_marks_it_used_and_says_what_it_is_worth(use, coupon, store):
    response = use(coupon.code)

    assert response.status_code == 200
    assert response.json() == {
        "status": "used",
        "code": coupon.code,
        "reward": {
            "code": "CNY10",
            "kind": "amount_off",
            "name": "¥10 off",
            "amount_off": "10.00",
            "percent_off": None,
            "min_spend": None,
        },
    }
    assert state(coupon) == (Coupon.Status.USED, NOW, store.pk, "S2001")


def test_a_code_typed_in_lower_case_with_dashes_is_accepted(use, coupon):
    typed = "-".join([coupon.code[:4], coupon.code[4:8], coupon.code[8:]]).lower()

    assert use(typed).status_code == 200
    assert state(coupon)[0] == Coupon.Status.USED


def test_the_receipt_number_is_optional(use, coupon):
    response = use(coupon.code, {"store": "SH001"})

    assert response.status_code == 200
    assert state(coupon)[3] == ""


def test_a_coupon_is_used_once(use, coupon):
    use(coupon.code)
    before = state(coupon)

    response = use(coupon.code, {"store": "SH001", "receipt_no": "S2002"})

    assert response.status_code == 409
    assert response.json() == {
        "error": "coupon_used",
        "detail": "This coupon has already been used.",
    }
    assert state(coupon) == before


def test_an_expired_coupon_is_refused(use, coupon, clock):
    clock.move_to(NOW + datetime.timedelta(days=30), tick=False)

    response = use(coupon.code)

    assert response.status_code == 422
    assert response.json() == {"error": "coupon_expired", "detail": "This coupon has expired."}
    assert state(coupon)[0] == Coupon.Status.ISSUED


def test_a_coupon_on_its_last_valid_minute_is_accepted(use, coupon, clock):
    clock.move_to(NOW + datetime.timedelta(days=30, seconds=-60), tick=False)

    assert use(coupon.code).status_code == 200


def test_a_voided_coupon_is_refused(use, coupon, staff_user):
    redemption_void(redemption=coupon.redemption, actor=staff_user, reason="till error")

    response = use(coupon.code)

    assert response.status_code == 422
    assert response.json() == {"error": "coupon_void", "detail": "This coupon was cancelled."}
    assert state(coupon)[0] == Coupon.Status.VOID


def test_an_unknown_code_gets_404(use, coupon):
    response = use("ABCDEFGHJKLMNPQR")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "There is no coupon with this code."}
    assert state(coupon)[0] == Coupon.Status.ISSUED


def test_a_token_for_one_store_cannot_accept_for_another(use, coupon):
    StoreFactory(code="BJ001")

    response = use(coupon.code, {"store": "BJ001"})

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden_store"
    assert state(coupon)[0] == Coupon.Status.ISSUED


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "store"),
        ({"store": "XX999"}, "store"),
        ({"store": "SH001", "receipt_no": "S" * 65}, "receipt_no"),
    ],
)
def test_bad_input_gets_400(use, coupon, data, field):
    response = use(coupon.code, data)

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert state(coupon)[0] == Coupon.Status.ISSUED


def test_accepting_without_a_token_gets_401(client, coupon):
    response = client.post(
        f"/api/v1/coupons/{coupon.code}/use", {"store": "SH001"}, content_type="application/json"
    )

    assert response.status_code == 401
    assert state(coupon)[0] == Coupon.Status.ISSUED
