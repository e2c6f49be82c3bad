"""A donation reward gives the member a receipt ("you donated N points on date: X"), not a
coupon: the portal shows the receipt and no QR code, and neither the till page nor the POS
API accepts a donation's code."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import AuditEntry
from members.services import api_token_create
from points.models import Coupon, Redemption, Reward
from points.selectors import points_balance
from points.services import (
    CouponNotAccepted,
    DonationNotVoidable,
    coupon_use,
    purchase_record,
    redemption_void,
    reward_redeem,
)
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english_and_frozen_clock(settings, time_machine):
    settings.LANGUAGE_CODE = "en"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def member(store):
    user = UserFactory(email="li@example.com", phone="+8613800000001", phone_verified=True)
    member = MemberFactory(user=user, phone=user.phone, name="李小龙", email="li@example.com")
    purchase_record(
        member=member, store=store, receipt_no="R1", occurred_at=NOW, amount=Decimal(2000)
    )
    return member


@pytest.fixture
def charity():
    return Reward.objects.create(
        code="HOPE",
        kind=Reward.Kind.DONATION,
        name_zh="希望工程",
        name_en="Project Hope",
        points_price=500,
    )


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


def page(response) -> str:
    return response.content.decode()


def redeem_in_portal(member_client, charity):
    url = reverse("portal:reward-redeem", args=[charity.code])
    html = page(member_client.get(url))
    assert "Your points go to the charity, and you get a donation receipt." in html
    key = html.split('name="idempotency_key" value="')[1].split('"')[0]
    return member_client.post(url, {"idempotency_key": key}, follow=True)


def test_donating_in_the_portal_gives_a_receipt_not_a_coupon(member_client, member, charity):
    response = redeem_in_portal(member_client, charity)
    redemption = Redemption.objects.get()
    assert response.redirect_chain[-1][0] == reverse(
        "portal:donation-receipt", args=[redemption.pk]
    )
    html = page(response)
    assert "You donated 500 points on 2026-03-15: Project Hope." in html
    assert f"Receipt no. DN20260315-{redemption.pk:06d}" in html
    assert "<svg" not in html  # no QR code to show at a till
    assert not Coupon.objects.exists()
    assert points_balance(member=member).available == 1500
    assert AuditEntry.objects.get(action="reward.donate").details["receipt"] == (
        redemption.donation_receipt_no
    )
    coupons = page(member_client.get(reverse("portal:coupons")))
    assert "My donations" in coupons
    assert f"{redemption.donation_receipt_no}</a> · Project Hope: 500 points" in coupons
    assert "coupon-link" not in coupons


def test_someone_elses_receipt_is_not_found(client, member, charity):
    redemption = reward_redeem(member=member, reward=charity, idempotency_key="k").redemption
    other = MemberFactory(user=UserFactory(email="o@example.com"))
    client.force_login(other.user)
    url = reverse("portal:donation-receipt", args=[redemption.pk])
    assert client.get(url).status_code == 404


def test_the_api_answers_a_donation_with_its_receipt_number(client, store, member, charity):
    _token, raw = api_token_create(store=store, name="till 1")
    response = client.post(
        "/api/v1/redemptions",
        json.dumps({"member_no": member.member_no, "reward": "HOPE", "idempotency_key": "d1"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["coupon"] is None
    assert body["donation_receipt_no"] == Redemption.objects.get().donation_receipt_no


@pytest.fixture
def old_donation_coupon(member, charity):
    """A donation redeemed before donations gave receipts: it got a coupon code."""
    redemption = reward_redeem(member=member, reward=charity, idempotency_key="old").redemption
    return Coupon.objects.create(
        code="DONATIONCODE2345",
        member=member,
        reward=charity,
        redemption=redemption,
        source=Coupon.Source.REDEMPTION,
        valid_until=timezone.now() + datetime.timedelta(days=30),
    )


def test_the_api_refuses_a_donations_code_at_the_till(client, store, old_donation_coupon):
    _token, raw = api_token_create(store=store, name="till 1")
    response = client.post(
        f"/api/v1/coupons/{old_donation_coupon.code}/use",
        json.dumps({"store": "SH001"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"},
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": "not_a_coupon",
        "detail": "This is a donation receipt, not a coupon: there is nothing to accept at "
        "the till.",
    }
    old_donation_coupon.refresh_from_db()
    assert old_donation_coupon.status == Coupon.Status.ISSUED


def test_the_till_page_refuses_it_too(staff_client, store, old_donation_coupon):
    response = staff_client.post(
        reverse("staff:coupon-accept"), {"code": old_donation_coupon.code, "store": store.pk}
    )
    assert response.status_code == 400
    assert "This is a donation receipt, not a coupon" in page(response)
    with pytest.raises(CouponNotAccepted):
        coupon_use(code=old_donation_coupon.code, store=store)


def test_the_portal_shows_an_old_donation_code_as_its_receipt(member_client, old_donation_coupon):
    coupons = page(member_client.get(reverse("portal:coupons")))
    assert old_donation_coupon.code not in coupons
    response = member_client.get(
        reverse("portal:coupon-detail", args=[old_donation_coupon.code]), follow=True
    )
    assert "You donated 500 points on" in page(response)
    assert "<svg" not in page(response)


def test_no_void_button_for_an_old_donation_code(client, role_user, member, old_donation_coupon):
    client.force_login(role_user("store_manager"))
    detail = page(client.get(reverse("staff:member-detail", args=[member.member_no])))
    assert old_donation_coupon.code in detail
    assert "Void (refund" not in detail
    response = client.post(
        reverse("staff:redemption-void", args=[old_donation_coupon.redemption_id]),
        {"reason": "oops", "confirm": "on"},
    )
    assert response.status_code == 400
    assert "A donation is given to the charity: it cannot be voided." in page(response)


def test_a_donation_is_not_voided(member, charity):
    redemption = reward_redeem(member=member, reward=charity, idempotency_key="k").redemption
    with pytest.raises(DonationNotVoidable):
        redemption_void(redemption=redemption, actor=UserFactory(), reason="oops")
    assert points_balance(member=member).available == 1500
