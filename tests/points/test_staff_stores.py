"""Staff belong to stores: purchases, returns and coupons only for their stores, their
stores' figures only, and cross-store returns through the POS API (allowed and audited, or
refused when the retailer turns them off)."""

from __future__ import annotations

import datetime
import json
import re
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.models import AuditEntry
from members.services import api_token_create
from points.models import Coupon, LedgerTransaction, Purchase, Return, Reward
from points.services import (
    CrossStoreReturnRefused,
    purchase_record,
    return_record,
    reward_redeem,
)
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)
NOT_YOURS = "You can only do this for your own stores."
NO_STORE = "Ask an administrator to add your store to your account."


@pytest.fixture(autouse=True)
def _english_and_frozen_clock(settings, time_machine):
    settings.LANGUAGE_CODE = "en"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def beijing(db):
    return StoreFactory(code="BJ001", name="北京王府井店")


@pytest.fixture
def member(store):
    return MemberFactory(name="李娜")


def buy(member, store, receipt, amount="200.00"):
    return purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=NOW - datetime.timedelta(days=1),
        amount=Decimal(amount),
    ).purchase


def page(response) -> str:
    return response.content.decode()


def store_options(html: str, name: str = "store") -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S).group(0)
    return re.findall(r"<option[^>]*>([^<]*)</option>", select)


def ledger_count() -> int:
    return LedgerTransaction.objects.count()


# --- purchases ------------------------------------------------------------------------------


def purchase_data(member, store, **change):
    return {
        "member": member.member_no,
        "store": store.pk,
        "receipt_no": "R1001",
        "occurred_at": "2026-03-15T13:30",
        "amount": "128.50",
        **change,
    }


def test_the_purchase_form_offers_only_the_staff_members_store(staff_client, store, beijing):
    html = page(staff_client.get("/staff/purchases/new/"))
    assert store_options(html) == [str(store)]
    assert f'<option value="{store.pk}" selected>' in html


def test_a_store_staff_member_cannot_record_a_purchase_for_another_store(
    staff_client, member, beijing
):
    before = ledger_count()
    response = staff_client.post("/staff/purchases/new/", purchase_data(member, beijing))
    assert response.status_code == 400
    assert NOT_YOURS in page(response)
    assert not Purchase.objects.exists()
    assert ledger_count() == before


def test_a_store_staff_member_records_purchases_for_each_of_their_stores(
    staff_client, staff_user, member, beijing
):
    staff_user.stores.add(beijing)
    response = staff_client.post("/staff/purchases/new/", purchase_data(member, beijing))
    assert response.status_code == 302
    assert Purchase.objects.get().store == beijing


def test_an_administrator_records_a_purchase_at_any_store(client, member, store, beijing):
    client.force_login(make_role_user("administrator"))
    html = page(client.get("/staff/purchases/new/"))
    assert store_options(html) == [str(beijing), str(store)]
    response = client.post("/staff/purchases/new/", purchase_data(member, beijing))
    assert response.status_code == 302
    assert Purchase.objects.get().store == beijing


# --- returns --------------------------------------------------------------------------------


def return_data(store, **change):
    return {
        "store": store.pk,
        "receipt_no": "RT9001",
        "original_receipt_no": "R1001",
        "original_store": "",
        "amount": "50.00",
        "occurred_at": "2026-03-15T13:30",
        **change,
    }


def test_a_store_staff_member_cannot_record_a_return_for_another_store(
    staff_client, member, beijing
):
    buy(member, beijing, "R1001")
    before = ledger_count()
    response = staff_client.post("/staff/returns/new/", return_data(beijing))
    assert response.status_code == 400
    assert NOT_YOURS in page(response)
    assert not Return.objects.exists()
    assert ledger_count() == before


def test_the_return_form_offers_their_stores_to_return_at_and_any_store_for_the_purchase(
    staff_client, store, beijing
):
    html = page(staff_client.get("/staff/returns/new/"))
    assert store_options(html) == [str(store)]
    assert store_options(html, "original_store") == ["Same store", str(beijing), str(store)]


def test_a_return_at_their_store_for_a_purchase_elsewhere_is_recorded_and_audited(
    staff_client, staff_user, member, store, beijing
):
    buy(member, beijing, "B77")
    data = return_data(store, original_receipt_no="B77", original_store=beijing.pk)
    response = staff_client.post("/staff/returns/new/", data)
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="purchase.return_cross_store")
    assert entry.actor == staff_user
    assert entry.details["store"] == "SH001"
    assert entry.details["original_store"] == "BJ001"


def test_with_cross_store_returns_off_the_till_is_told_and_nothing_is_written(
    settings, staff_client, member, store, beijing
):
    settings.POINTS_CROSS_STORE_RETURNS = False
    buy(member, beijing, "B77")
    before = ledger_count()
    data = return_data(store, original_receipt_no="B77", original_store=beijing.pk)
    response = staff_client.post("/staff/returns/new/", data)
    assert response.status_code == 400
    assert "returns are accepted only at the store of the purchase" in page(response)
    assert not Return.objects.exists()
    assert ledger_count() == before


# --- coupons --------------------------------------------------------------------------------


@pytest.fixture
def coupon(member, store):
    buy(member, store, "OPENING", "3000")
    reward = Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal(10),
    )
    return reward_redeem(member=member, reward=reward, idempotency_key=str(uuid.uuid4())).coupon


def test_a_store_staff_member_cannot_accept_a_coupon_for_another_store(
    staff_client, coupon, beijing
):
    response = staff_client.post("/staff/coupons/", {"code": coupon.code, "store": beijing.pk})
    assert response.status_code == 400
    assert NOT_YOURS in page(response)
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.ISSUED
    assert coupon.used_store is None


def test_the_coupon_form_offers_only_the_staff_members_store(staff_client, coupon, store, beijing):
    html = page(staff_client.get("/staff/coupons/", {"code": coupon.code}))
    assert store_options(html) == [str(store)]


# --- a login without a store ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/staff/", "/staff/purchases/new/", "/staff/returns/new/", "/staff/coupons/"]
)
def test_a_staff_member_without_a_store_is_told_to_ask_an_administrator(client, store, url):
    client.force_login(make_role_user("store_manager"))
    html = page(client.get(url))
    assert NO_STORE in html


def test_a_purchase_posted_by_a_staff_member_without_a_store_is_refused(client, member, store):
    client.force_login(make_role_user("store_staff"))
    response = client.post("/staff/purchases/new/", purchase_data(member, store))
    assert response.status_code == 400
    assert NO_STORE in page(response)
    assert not Purchase.objects.exists()


def test_roles_that_see_every_store_are_not_told_to_ask_for_one(client, store):
    for role in ("administrator", "marketer", "auditor"):
        client.force_login(make_role_user(role))
        assert NO_STORE not in page(client.get("/staff/"))


# --- figures: the member page's purchases -----------------------------------------------------


def purchases_on_member_page(client, member) -> str:
    html = page(client.get(f"/staff/members/{member.member_no}/"))
    return html.split('id="purchases-heading"', 1)[1].split("</section>", 1)[0]


def test_a_manager_sees_only_their_stores_purchases_and_an_administrator_sees_all(
    client, member, store, beijing
):
    buy(member, store, "SH-RECEIPT")
    buy(member, beijing, "BJ-RECEIPT")

    client.force_login(make_role_user("store_manager", stores=[store]))
    section = purchases_on_member_page(client, member)
    assert "SH-RECEIPT" in section
    assert "BJ-RECEIPT" not in section
    assert "Purchases at your stores only." in section

    client.force_login(make_role_user("administrator"))
    section = purchases_on_member_page(client, member)
    assert "SH-RECEIPT" in section
    assert "BJ-RECEIPT" in section
    assert "Purchases at your stores only." not in section


# --- POS API: cross-store returns -------------------------------------------------------------


def api_return(client, raw_token, **change):
    body = {
        "store": "SH001",
        "receipt_no": "RT1",
        "original_receipt_no": "B77",
        "original_store": "BJ001",
        "amount": "50.00",
        "occurred_at": "2026-03-15T13:00:00",
        **change,
    }
    return client.post(
        "/api/v1/returns",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_token}", "Accept-Language": "en"},
    )


def test_the_api_takes_a_return_for_a_purchase_at_another_store_and_audits_it(
    client, member, store, beijing
):
    token, raw = api_token_create(store=store, name="till 1")
    purchase = buy(member, beijing, "B77")

    response = api_return(client, raw)

    assert response.status_code == 201
    assert response.json()["points_reversed"] == 50
    entry = AuditEntry.objects.get(action="purchase.return_cross_store")
    assert entry.actor is None
    assert entry.actor_label == f"API token {token.prefix} (SH001)"
    assert entry.member == member
    assert entry.details == {
        "store": "SH001",
        "receipt_no": "RT1",
        "original_store": "BJ001",
        "original_receipt_no": "B77",
        "amount": "50.00",
        "points": 50,
    }
    assert Return.objects.get().purchase == purchase


def test_a_same_store_api_return_writes_no_cross_store_entry(client, member, store):
    _token, raw = api_token_create(store=store, name="till 1")
    buy(member, store, "R1")
    response = api_return(client, raw, original_receipt_no="R1", original_store="")
    assert response.status_code == 201
    assert not AuditEntry.objects.filter(action="purchase.return_cross_store").exists()


def test_with_cross_store_returns_off_the_api_refuses_them_and_writes_nothing(
    settings, client, member, store, beijing
):
    settings.POINTS_CROSS_STORE_RETURNS = False
    _token, raw = api_token_create(store=store, name="till 1")
    buy(member, beijing, "B77")
    before = (ledger_count(), AuditEntry.objects.count())

    response = api_return(client, raw)

    assert response.status_code == 422
    assert response.json() == {
        "error": "cross_store_return",
        "detail": "This purchase was made at another store: returns are accepted only at the "
        "store of the purchase.",
    }
    assert not Return.objects.exists()
    assert (ledger_count(), AuditEntry.objects.count()) == before
    # The store's own purchases are still returned as ever.
    buy(member, store, "R1")
    assert api_return(client, raw, original_receipt_no="R1", original_store="").status_code == 201


def test_the_service_refuses_cross_store_returns_when_they_are_off(
    settings, member, store, beijing
):
    settings.POINTS_CROSS_STORE_RETURNS = False
    buy(member, beijing, "B77")
    with pytest.raises(CrossStoreReturnRefused):
        return_record(
            store=store,
            receipt_no="RT1",
            original_receipt_no="B77",
            original_store=beijing,
            amount=Decimal(10),
            occurred_at=NOW,
        )


# --- The services refuse it too, whichever page or script calls them -------------------------


def test_the_services_refuse_a_cashier_recording_for_another_store(store, beijing, member):
    from points.services import StoreNotYours, coupon_use

    cashier = make_role_user("store_staff", stores=[store])
    purchase = buy(member, beijing, "B1")
    redemption = reward_redeem(
        member=member,
        reward=Reward.objects.create(
            code="CNY1",
            kind=Reward.Kind.AMOUNT_OFF,
            name_zh="1元券",
            name_en="¥1 off",
            points_price=1,
            amount_off=Decimal("1"),
        ),
        idempotency_key="k-1",
    )
    before = (Purchase.objects.count(), Return.objects.count(), LedgerTransaction.objects.count())

    with pytest.raises(StoreNotYours):
        purchase_record(
            member=member,
            store=beijing,
            receipt_no="B2",
            occurred_at=NOW,
            amount=Decimal("10.00"),
            actor=cashier,
        )
    with pytest.raises(StoreNotYours):
        return_record(
            store=beijing,
            receipt_no="X1",
            original_receipt_no=purchase.receipt_no,
            amount=Decimal("10.00"),
            occurred_at=NOW,
            actor=cashier,
        )
    with pytest.raises(StoreNotYours):
        coupon_use(code=redemption.coupon.code, store=beijing, receipt_no="B3", actor=cashier)

    after = (Purchase.objects.count(), Return.objects.count(), LedgerTransaction.objects.count())
    assert after == before
    assert Coupon.objects.get(pk=redemption.coupon.pk).status == Coupon.Status.ISSUED
    # At their own store the same cashier records as before.
    assert purchase_record(
        member=member,
        store=store,
        receipt_no="S1",
        occurred_at=NOW,
        amount=Decimal("10.00"),
        actor=cashier,
    ).created


def test_the_enrolment_service_refuses_a_cashier_enrolling_for_another_store(store, beijing):
    from members.models import Member
    from members.services import StoreNotYours, member_enroll

    cashier = make_role_user("store_staff", stores=[store])

    with pytest.raises(StoreNotYours):
        member_enroll(
            phone="13912340000",
            name="王五",
            channel=Member.Channel.STORE,
            store=beijing,
            actor=cashier,
        )

    assert not Member.objects.filter(phone="+8613912340000").exists()
    administrator = make_role_user("administrator")
    assert (
        member_enroll(
            phone="13912340000",
            name="王五",
            channel=Member.Channel.STORE,
            store=beijing,
            actor=administrator,
        ).enrolment_store
        == beijing
    )
