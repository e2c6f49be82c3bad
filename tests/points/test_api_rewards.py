"""POS API: the rewards catalogue and redeeming a reward for a member."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.models import Member
from members.services import api_token_create
from points.models import Account, Coupon, LedgerTransaction, Lot, Redemption, Reward
from points.services import purchase_record, return_record
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)
REWARDS_URL = "/api/v1/rewards"
URL = "/api/v1/redemptions"


@pytest.fixture(autouse=True)
def frozen_clock(time_machine):
    time_machine.move_to(NOW, tick=False)


class Till:
    def __init__(self, client, raw_token: str) -> None:
        self.client = client
        self.raw_token = raw_token

    def headers(self, language="en"):
        headers = {"Authorization": f"Bearer {self.raw_token}"}
        if language:
            headers["Accept-Language"] = language
        return headers

    def post(self, data, url=URL):
        body = data if isinstance(data, str) else json.dumps(data)
        return self.client.post(url, body, content_type="application/json", headers=self.headers())

    def get(self, url=REWARDS_URL, language="en"):
        return self.client.get(url, headers=self.headers(language))


@pytest.fixture
def pos(client, store):
    _token, raw = api_token_create(store=store, name="till 1")
    return Till(client, raw)


@pytest.fixture
def cny10(db):
    return Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元优惠券",
        name_en="¥10 off",
        description_zh="全场通用",
        description_en="On anything in store",
        points_price=1000,
        amount_off=Decimal("10"),
    )


def member_with_points(store, points, receipt="R1"):
    member = MemberFactory()
    purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=NOW - datetime.timedelta(days=1),
        amount=Decimal(points),
    )
    return member


def redeem(member, **change):
    return {"member_no": member.member_no, "reward": "CNY10", "idempotency_key": "k-1", **change}


def written():
    return (
        Redemption.objects.count(),
        Coupon.objects.count(),
        LedgerTransaction.objects.count(),
        sorted(Lot.objects.values_list("remaining", flat=True)),
        sorted(Account.objects.values_list("balance", flat=True)),
        sorted(Reward.objects.values_list("code", "stock")),
    )


# --- The catalogue ------------------------------------------------------------------------


def test_the_catalogue_lists_available_rewards_cheapest_first(pos, cny10):
    Reward.objects.create(
        code="TEA",
        kind=Reward.Kind.GIFT,
        name_zh="茶叶礼盒",
        name_en="Tea gift box",
        points_price=3000,
        stock=5,
        per_member_limit=1,
        min_tier_rank=2,
        available_until=datetime.datetime(2026, 4, 1, tzinfo=SH),
    )
    Reward.objects.create(
        code="SAVE30",
        kind=Reward.Kind.SPEND_SAVE,
        name_zh="满200减30",
        name_en="¥30 off ¥200",
        points_price=2000,
        amount_off=Decimal(30),
        min_spend=Decimal(200),
    )
    Reward.objects.create(
        code="OFF", kind="gift", name_zh="下架", name_en="Off", points_price=1, is_active=False
    )
    Reward.objects.create(
        code="SOON",
        kind="gift",
        name_zh="未开始",
        name_en="Soon",
        points_price=1,
        available_from=NOW + datetime.timedelta(days=1),
    )
    Reward.objects.create(
        code="GONE",
        kind="gift",
        name_zh="已结束",
        name_en="Gone",
        points_price=1,
        available_until=NOW,
    )

    response = pos.get()

    assert response.status_code == 200
    body = response.json()
    assert [reward["code"] for reward in body] == ["CNY10", "SAVE30", "TEA"]
    assert body[0] == {
        "code": "CNY10",
        "kind": "amount_off",
        "name": "¥10 off",
        "description": "On anything in store",
        "points_price": 1000,
        "amount_off": "10.00",
        "percent_off": None,
        "min_spend": None,
        "stock": None,
        "per_member_limit": None,
        "min_tier_rank": 1,
        "available_until": None,
    }
    assert body[1]["min_spend"] == "200.00"
    tea = body[2]
    assert (tea["stock"], tea["per_member_limit"], tea["min_tier_rank"]) == (5, 1, 2)
    assert tea["available_until"] == "2026-04-01T00:00:00+08:00"


@pytest.mark.parametrize(
    ("language", "name", "description"),
    [
        (None, "10元优惠券", "全场通用"),
        ("zh-CN,zh;q=0.9", "10元优惠券", "全场通用"),
        ("en-GB,en;q=0.8", "¥10 off", "On anything in store"),
    ],
)
def test_names_follow_accept_language_chinese_by_default(pos, cny10, language, name, description):
    reward = pos.get(language=language).json()[0]

    assert (reward["name"], reward["description"]) == (name, description)


def test_a_reward_without_english_text_shows_the_chinese(pos):
    Reward.objects.create(code="ZH", kind="gift", name_zh="红包", name_en="", points_price=5)

    assert pos.get(language="en").json()[0]["name"] == "红包"


def test_the_catalogue_needs_a_token(client, cny10):
    response = client.get(REWARDS_URL)

    assert response.status_code == 401


# --- Redeeming ----------------------------------------------------------------------------


def test_redeeming_cny10_spends_1000_points_and_issues_a_coupon(pos, store, cny10):
    member = member_with_points(store, 1500)

    response = pos.post(redeem(member))

    assert response.status_code == 201
    redemption = Redemption.objects.get()
    coupon = Coupon.objects.get()
    assert response.json() == {
        "redemption_id": redemption.pk,
        "coupon": {"code": coupon.code, "valid_until": "2026-04-14T14:00:00+08:00"},
        "donation_receipt_no": None,
        "points_spent": 1000,
        "balance": {"available": 500, "pending": 0},
    }
    assert coupon.member == member
    assert coupon.status == Coupon.Status.ISSUED


def test_a_reward_code_is_found_in_any_case(pos, store, cny10):
    member = member_with_points(store, 1500)

    assert pos.post(redeem(member, reward=" cny10 ")).status_code == 201


def test_a_replayed_redemption_gets_200_with_the_same_coupon(pos, store, cny10):
    member = member_with_points(store, 2500)
    first = pos.post(redeem(member))
    after_first = written()

    again = pos.post(redeem(member))

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert written() == after_first


def test_a_replay_shows_the_balance_as_it_is_now(pos, store, cny10):
    member = member_with_points(store, 2500)
    first = pos.post(redeem(member)).json()
    pos.post(redeem(member, idempotency_key="k-2"))

    again = pos.post(redeem(member)).json()

    assert again["coupon"] == first["coupon"]
    assert again["points_spent"] == 1000
    assert again["balance"] == {"available": 500, "pending": 0}


def test_the_same_key_for_another_reward_or_member_gets_409(pos, store, cny10):
    Reward.objects.create(code="TEA", kind="gift", name_zh="茶", name_en="Tea", points_price=100)
    member = member_with_points(store, 2500)
    other = member_with_points(store, 2500, receipt="R2")
    pos.post(redeem(member))
    before = written()

    for payload in [redeem(member, reward="TEA"), redeem(other)]:
        response = pos.post(payload)
        assert response.status_code == 409
        assert response.json()["error"] == "idempotency_conflict"
    assert written() == before


def test_idempotency_keys_are_per_store(pos, client, store, cny10):
    member = member_with_points(store, 2500)
    _token, raw = api_token_create(store=StoreFactory(code="BJ001"))
    beijing = Till(client, raw)

    first = pos.post(redeem(member))
    second = beijing.post(redeem(member))

    assert first.status_code == second.status_code == 201
    assert first.json()["coupon"]["code"] != second.json()["coupon"]["code"]
    assert Coupon.objects.count() == 2


def test_not_enough_points_gets_422_insufficient_points(pos, store, cny10):
    member = member_with_points(store, 999)
    before = written()

    response = pos.post(redeem(member))

    assert response.status_code == 422
    assert response.json() == {
        "error": "insufficient_points",
        "detail": "This needs 1000 points; the member has 999 available.",
    }
    assert written() == before


def test_the_last_unit_gone_gets_422_out_of_stock(pos, store, cny10):
    cny10.stock = 1
    cny10.save()
    pos.post(redeem(member_with_points(store, 1000)))
    member = member_with_points(store, 1000, receipt="R2")
    before = written()

    response = pos.post(redeem(member, idempotency_key="k-2"))

    assert response.status_code == 422
    assert response.json() == {"error": "out_of_stock", "detail": "This reward is out of stock."}
    assert written() == before


def test_the_per_member_limit_gets_422_limit_reached(pos, store, cny10):
    cny10.per_member_limit = 1
    cny10.save()
    member = member_with_points(store, 3000)
    pos.post(redeem(member))
    before = written()

    response = pos.post(redeem(member, idempotency_key="k-2"))

    assert response.status_code == 422
    assert response.json()["error"] == "limit_reached"
    assert written() == before


def test_a_higher_tier_reward_gets_422_tier_required(pos, store):
    Reward.objects.create(
        code="GOLD",
        kind="gift",
        name_zh="金卡礼",
        name_en="Gold gift",
        points_price=10,
        min_tier_rank=3,
    )
    member = member_with_points(store, 1000)
    before = written()

    response = pos.post(redeem(member, reward="GOLD"))

    assert response.status_code == 422
    assert response.json() == {
        "error": "tier_required",
        "detail": "The member's tier is too low for this reward.",
    }
    assert written() == before


def test_a_negative_balance_gets_422_negative_balance(pos, store, cny10):
    member = member_with_points(store, 1000)
    purchase_record(
        member=member,
        store=store,
        receipt_no="R2",
        occurred_at=NOW,
        amount=Decimal(10),
        points_to_use=1000,
    )
    # Returning the first purchase takes back 1000 points that were spent: 1000 negative.
    return_record(
        store=store,
        receipt_no="RT",
        original_receipt_no="R1",
        amount=Decimal(1000),
        occurred_at=NOW,
    )
    before = written()

    response = pos.post(redeem(member))

    assert response.status_code == 422
    assert response.json()["error"] == "negative_balance"
    assert "1000" in response.json()["detail"]
    assert written() == before


@pytest.mark.parametrize(
    "change",
    [
        {"is_active": False},
        {"available_until": NOW},
        {"available_from": NOW + datetime.timedelta(hours=1)},
    ],
)
def test_a_reward_not_available_now_gets_422_reward_unavailable(pos, store, cny10, change):
    Reward.objects.filter(pk=cny10.pk).update(**change)
    member = member_with_points(store, 5000)
    before = written()

    response = pos.post(redeem(member))

    assert response.status_code == 422
    assert response.json() == {
        "error": "reward_unavailable",
        "detail": "This reward is not available now.",
    }
    assert written() == before


def test_a_frozen_member_gets_422_member_inactive(pos, store, cny10):
    member = member_with_points(store, 5000)
    Member.objects.filter(pk=member.pk).update(status=Member.Status.FROZEN)
    before = written()

    response = pos.post(redeem(member))

    assert response.status_code == 422
    assert response.json()["error"] == "member_inactive"
    assert written() == before


def test_an_unknown_reward_gets_404(pos, store, cny10):
    member = member_with_points(store, 5000)
    before = written()

    response = pos.post(redeem(member, reward="NOPE"))

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "There is no reward with this code."}
    assert written() == before


def test_an_unknown_or_closed_member_gets_404(pos, store, cny10):
    closed = MemberFactory(status=Member.Status.CLOSED)
    before = written()

    for member_no in ["800000000000", closed.member_no]:
        response = pos.post(redeem(closed, member_no=member_no))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert written() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 101}, "idempotency_key"),
        ({"reward": " "}, "reward"),
        ({"reward": 10}, "reward"),
    ],
)
def test_bad_input_gets_400_naming_the_field(pos, store, cny10, change, field):
    member = member_with_points(store, 5000)
    before = written()

    response = pos.post(redeem(member, **change))

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert written() == before


def test_a_missing_idempotency_key_gets_400(pos, store, cny10):
    member = member_with_points(store, 5000)
    payload = redeem(member)
    del payload["idempotency_key"]

    response = pos.post(payload)

    assert response.status_code == 400
    assert response.json()["fields"] == {"idempotency_key": "This field is required."}
    assert Coupon.objects.count() == 0


def test_redeeming_without_a_token_gets_401(client, store, cny10):
    member = member_with_points(store, 5000)

    response = client.post(URL, redeem(member), content_type="application/json")

    assert response.status_code == 401
    assert Coupon.objects.count() == 0
