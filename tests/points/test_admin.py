"""The Django admin for points: administrators configure rules and rewards; the ledger is
shown read-only and cannot be changed there."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from points.models import (
    Category,
    CategoryRate,
    Coupon,
    EarningPolicy,
    Entry,
    ExpiryReminder,
    LedgerTransaction,
    Lot,
    Purchase,
    Reward,
)
from points.services import purchase_record, return_record, reward_redeem
from tests.conftest import make_role_user
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")

CHANGELISTS = [
    "earningpolicy",
    "category",
    "categoryrate",
    "reward",
    "purchase",
    "return",
    "ledgertransaction",
    "lot",
    "coupon",
    "redemption",
    "expiryreminder",
]
LEDGER_MODELS = [
    "purchase",
    "return",
    "ledgertransaction",
    "lot",
    "coupon",
    "redemption",
    "expiryreminder",
]


@pytest.fixture
def admin_client(client, db):
    client.force_login(make_role_user("administrator", email="admin@example.com", is_staff=True))
    return client


@pytest.fixture
def ledger(store):
    """One of each ledger row: a purchase, a partial return, a redemption and a reminder."""
    EarningPolicy.objects.create()
    CategoryRate.objects.create(category="tobacco", rate=0, note="excluded by law")
    reward = Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元代金券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal("10"),
    )
    member = MemberFactory()
    now = datetime.datetime.now(tz=SH)
    purchase = purchase_record(
        member=member,
        store=store,
        receipt_no="R1",
        occurred_at=now,
        amount=Decimal("1500"),
        now=now,
    ).purchase
    return_record(
        store=store,
        receipt_no="RT1",
        original_receipt_no="R1",
        amount=Decimal("100"),
        occurred_at=now,
    )
    redemption = reward_redeem(member=member, reward=reward, idempotency_key="k1", now=now)
    ExpiryReminder.objects.create(
        member=member, expires_on=now.date(), days_before=30, points=400, channels=["sms"]
    )
    return {"purchase": purchase, "redemption": redemption, "reward": reward, "member": member}


@pytest.mark.parametrize("model", CHANGELISTS)
def test_an_administrator_opens_every_points_changelist(admin_client, ledger, model):
    response = admin_client.get(f"/admin/points/{model}/")

    assert response.status_code == 200


def test_the_reward_list_shows_code_kind_name_price_stock_and_is_searchable(admin_client, ledger):
    Reward.objects.create(
        code="TOTE",
        kind=Reward.Kind.GIFT,
        name_zh="环保袋",
        name_en="Tote bag",
        points_price=800,
        stock=12,
    )

    page = admin_client.get("/admin/points/reward/", {"q": "tote"}).content.decode()

    assert "TOTE" in page and "环保袋" in page and "800" in page and "12" in page
    assert "CNY10" not in page


def test_a_ledger_transaction_opens_with_its_entries_and_cannot_be_changed(admin_client, ledger):
    txn = ledger["purchase"].earn_transaction
    url = f"/admin/points/ledgertransaction/{txn.pk}/change/"

    page = admin_client.get(url)
    assert page.status_code == 200
    assert page.content.decode().count("1500") >= 2  # the member's entry and the issuance's

    response = admin_client.post(url, {"member_amount": "999999", "reason": "edited"})
    assert response.status_code == 403
    txn.refresh_from_db()
    assert txn.member_amount == 1500
    assert sorted(Entry.objects.filter(transaction=txn).values_list("amount", flat=True)) == [
        -1500,
        1500,
    ]


@pytest.mark.parametrize("model", LEDGER_MODELS)
def test_ledger_rows_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, ledger, model):
    rows = {
        "purchase": Purchase.objects.first(),
        "return": ledger["purchase"].returns.first(),
        "ledgertransaction": LedgerTransaction.objects.first(),
        "lot": Lot.objects.first(),
        "coupon": Coupon.objects.first(),
        "redemption": ledger["redemption"].redemption,
        "expiryreminder": ExpiryReminder.objects.first(),
    }
    row = rows[model]
    before = {
        "transactions": LedgerTransaction.objects.count(),
        "lots": list(Lot.objects.values_list("id", "remaining")),
        "purchases": list(Purchase.objects.values_list("id", "amount", "returned_amount")),
        "coupons": list(Coupon.objects.values_list("id", "status")),
    }

    assert admin_client.get(f"/admin/points/{model}/{row.pk}/change/").status_code == 200
    assert admin_client.post(f"/admin/points/{model}/{row.pk}/change/", {}).status_code == 403
    assert admin_client.get(f"/admin/points/{model}/add/").status_code == 403
    delete = admin_client.post(f"/admin/points/{model}/{row.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403

    assert before == {
        "transactions": LedgerTransaction.objects.count(),
        "lots": list(Lot.objects.values_list("id", "remaining")),
        "purchases": list(Purchase.objects.values_list("id", "amount", "returned_amount")),
        "coupons": list(Coupon.objects.values_list("id", "status")),
    }
    page = admin_client.get(f"/admin/points/{model}/").content.decode()
    assert f"/admin/points/{model}/add/" not in page


def test_the_earning_policy_is_one_row_that_cannot_be_deleted(admin_client, db):
    assert admin_client.get("/admin/points/earningpolicy/add/").status_code == 200
    response = admin_client.post(
        "/admin/points/earningpolicy/add/",
        {
            "base_rate": "1",
            "birthday_multiplier": "2",
            "pending_days": "0",
            "points_per_yuan": "100",
            "signup_bonus": "300",
            "profile_bonus": "100",
            "referral_bonus": "300",
            "referral_cap_per_year": "20",
            "coupon_valid_days": "30",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    policy = EarningPolicy.objects.get()
    assert policy.signup_bonus == 300

    # Once it exists: no second row, no deleting it.
    assert admin_client.get("/admin/points/earningpolicy/add/").status_code == 403
    delete = admin_client.post(f"/admin/points/earningpolicy/{policy.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert EarningPolicy.objects.count() == 1


def test_an_administrator_adds_a_reward_with_a_gold_price(admin_client, db):
    response = admin_client.post(
        "/admin/points/reward/add/",
        {
            "code": "TEA",
            "kind": "gift",
            "name_zh": "茶叶礼盒",
            "name_en": "Tea gift box",
            "description_zh": "",
            "description_en": "",
            "points_price": "3000",
            "stock": "20",
            "min_tier_rank": "1",
            "is_active": "on",
            "created_at_0": "2026-01-01",
            "created_at_1": "10:00:00",
            "tier_prices-TOTAL_FORMS": "1",
            "tier_prices-INITIAL_FORMS": "0",
            "tier_prices-MIN_NUM_FORMS": "0",
            "tier_prices-MAX_NUM_FORMS": "1000",
            "tier_prices-0-tier_rank": "3",
            "tier_prices-0-points_price": "2500",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    reward = Reward.objects.get(code="TEA")
    assert reward.stock == 20
    assert list(reward.tier_prices.values_list("tier_rank", "points_price")) == [(3, 2500)]


def test_store_staff_cannot_open_the_points_admin(client, ledger):
    client.force_login(make_role_user("store_staff", email="s@example.com", is_staff=True))

    assert client.get("/admin/points/earningpolicy/").status_code == 403
    assert client.get("/admin/points/reward/add/").status_code == 403


def test_an_administrator_adds_a_category_with_its_chinese_and_english_names(admin_client):
    response = admin_client.post(
        "/admin/points/category/add/",
        {"code": "snacks", "name_zh": "零食", "name_en": "Snacks"},
    )

    assert response.status_code == 302
    category = Category.objects.get(code="snacks")
    assert (category.name_zh, category.name_en) == ("零食", "Snacks")


def test_a_category_rate_is_for_a_category_of_the_list(admin_client):
    Category.objects.create(code="tobacco", name_zh="烟草", name_en="Tobacco")

    refused = admin_client.post(
        "/admin/points/categoryrate/add/", {"category": "tabacco", "rate": "0", "note": ""}
    )
    accepted = admin_client.post(
        "/admin/points/categoryrate/add/", {"category": "tobacco", "rate": "0", "note": ""}
    )

    assert refused.status_code == 200
    assert "category" in refused.context["adminform"].form.errors
    assert accepted.status_code == 302
    assert list(CategoryRate.objects.values_list("category", "rate")) == [("tobacco", 0)]


def reward_change(reward: Reward, **change) -> dict:
    data = {
        "code": reward.code,
        "kind": reward.kind,
        "name_zh": reward.name_zh,
        "name_en": reward.name_en,
        "description_zh": "",
        "description_en": "",
        "points_price": str(reward.points_price),
        "amount_off": "" if reward.amount_off is None else str(reward.amount_off),
        "min_tier_rank": "1",
        "is_active": "on",
        "created_at_0": "2026-01-01",
        "created_at_1": "10:00:00",
        "tier_prices-TOTAL_FORMS": "0",
        "tier_prices-INITIAL_FORMS": "0",
        "tier_prices-MIN_NUM_FORMS": "0",
        "tier_prices-MAX_NUM_FORMS": "1000",
    }
    return {**data, **change}


def test_a_redeemed_rewards_kind_cannot_be_changed(admin_client, ledger):
    # Its coupons are out there: made a donation, they could be neither used nor voided.
    reward = ledger["reward"]
    url = f"/admin/points/reward/{reward.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="kind"' not in page
    assert "¥10 off" in page
    response = admin_client.post(url, reward_change(reward, kind="donation", name_en="¥10 off!"))
    assert response.status_code == 302, response.content.decode()[:3000]
    reward.refresh_from_db()
    assert (reward.kind, reward.name_en) == (Reward.Kind.AMOUNT_OFF, "¥10 off!")


def test_an_unredeemed_rewards_kind_can_still_be_changed(admin_client, db):
    reward = Reward.objects.create(
        code="TOTE", kind=Reward.Kind.GIFT, name_zh="环保袋", name_en="Tote bag", points_price=800
    )
    url = f"/admin/points/reward/{reward.pk}/change/"
    assert 'name="kind"' in admin_client.get(url).content.decode()
    response = admin_client.post(url, reward_change(reward, kind="donation"))
    assert response.status_code == 302, response.content.decode()[:3000]
    reward.refresh_from_db()
    assert reward.kind == Reward.Kind.DONATION
