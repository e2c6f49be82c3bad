"""Accepting a coupon at the till, and voiding an unused redemption from the member page."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from members.models import AuditEntry
from members.roles import ROLES
from points.models import Coupon, Redemption, Reward
from points.selectors import points_balance
from points.services import coupon_use, purchase_record, reward_redeem
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)
URL = "/staff/coupons/"
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _english_and_frozen_clock(settings, time_machine):
    settings.LANGUAGE_CODE = "en"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def member(store):
    member = MemberFactory(name="李娜")
    purchase_record(
        member=member,
        store=store,
        receipt_no="OPENING",
        occurred_at=NOW - datetime.timedelta(days=1),
        amount=Decimal(3000),
    )
    return member


@pytest.fixture
def reward(db):
    return Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal(10),
        stock=5,
    )


@pytest.fixture
def coupon(member, reward):
    return reward_redeem(member=member, reward=reward, idempotency_key=str(uuid.uuid4())).coupon


def page(response) -> str:
    return response.content.decode()


def test_the_url_has_its_name():
    assert reverse("staff:coupon-accept") == URL


@pytest.mark.parametrize("role", ROLES)
def test_only_till_roles_may_accept_coupons(client, role_user, role):
    client.force_login(role_user(role))
    expected = 200 if role in ("store_staff", "store_manager", "administrator") else 403
    assert client.get(URL).status_code == expected


def test_a_code_shows_the_coupon_and_a_mark_used_button(staff_client, coupon):
    html = page(staff_client.get(f"{URL}?code={coupon.code}"))
    assert "¥10 off" in html
    assert "李娜" in html
    assert "2026-04-14" in html  # valid 30 days
    assert ">Valid<" in html
    assert "Mark used" in html


@pytest.mark.parametrize(
    "typed",
    [
        lambda code: code.lower(),
        lambda code: f"  {code[:4]} {code[4:8]}-{code[8:]} ",
        lambda code: f"https://loyalty.example/coupons/{code}/",
    ],
)
def test_a_scanned_or_typed_code_is_understood(staff_client, coupon, typed):
    html = page(staff_client.get(URL, {"code": typed(coupon.code)}))
    assert "Mark used" in html
    assert coupon.code in html


def test_the_lookup_answers_htmx_with_the_result_only(staff_client, coupon):
    html = page(staff_client.get(f"{URL}?code={coupon.code}", headers=HTMX))
    assert html.strip().startswith('<div id="coupon-result"')
    assert "Mark used" in html


def test_marking_used_uses_the_coupon_once(staff_client, coupon, store, staff_user):
    data = {"code": coupon.code, "store": store.pk, "receipt_no": "R555"}
    response = staff_client.post(URL, data, follow=True)
    html = page(response)
    assert f"Coupon {coupon.code} marked used: ¥10 off" in html
    # One outcome: the success, not also the coupon's card saying it is used.
    assert ">Used<" not in html
    assert "already been used" not in html
    assert 'id="coupon-heading"' not in html
    assert "Mark used" not in html
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.USED
    assert (coupon.used_store, coupon.used_receipt_no, coupon.used_by) == (
        store,
        "R555",
        staff_user,
    )
    assert AuditEntry.objects.filter(action="coupon.use").count() == 1

    again = staff_client.post(URL, data)
    assert again.status_code == 409
    assert "This coupon has already been used." in page(again)
    assert AuditEntry.objects.filter(action="coupon.use").count() == 1


def test_a_used_coupon_says_so_on_lookup(staff_client, coupon, store):
    coupon_use(code=coupon.code, store=store)
    html = page(staff_client.get(f"{URL}?code={coupon.code}"))
    assert "This coupon has already been used." in html
    assert "Mark used" not in html


def test_an_expired_coupon_is_refused(staff_client, staff_user, coupon, store, time_machine):
    time_machine.move_to(NOW + datetime.timedelta(days=31), tick=False)
    staff_client.force_login(staff_user)  # the session from a month ago has expired
    html = page(staff_client.get(f"{URL}?code={coupon.code}"))
    assert ">Expired<" in html
    assert "This coupon has expired." in html
    response = staff_client.post(URL, {"code": coupon.code, "store": store.pk})
    assert response.status_code == 400
    assert "This coupon has expired." in page(response)
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.ISSUED


def test_an_unknown_code_says_so(staff_client, coupon, store):
    html = page(staff_client.get(f"{URL}?code=NOSUCHCODE"))
    assert "There is no coupon with this code." in html
    response = staff_client.post(URL, {"code": "NOSUCHCODE", "store": store.pk})
    assert response.status_code == 400
    assert "There is no coupon with this code." in page(response)


def test_the_store_is_remembered_from_the_last_coupon(
    staff_client, staff_user, member, reward, coupon
):
    other = StoreFactory(code="BJ001", name="北京店")
    staff_user.stores.add(other)
    staff_client.post(URL, {"code": coupon.code, "store": other.pk})
    second = reward_redeem(member=member, reward=reward, idempotency_key="k2").coupon
    html = page(staff_client.get(f"{URL}?code={second.code}"))
    assert f'<option value="{other.pk}" selected>' in html


# --- voiding a redemption from the member page ---------------------------------------------


def void_url(coupon) -> str:
    return reverse("staff:redemption-void", args=[coupon.redemption_id])


VOID = {"reason": "Customer changed their mind", "confirm": "on"}


@pytest.mark.parametrize("role", ROLES)
def test_only_managers_and_administrators_may_void(client, role_user, role, coupon):
    client.force_login(role_user(role))
    response = client.post(void_url(coupon), VOID)
    allowed = role in ("store_manager", "administrator")
    assert response.status_code == (302 if allowed else 403)
    coupon.refresh_from_db()
    assert coupon.status == (Coupon.Status.VOID if allowed else Coupon.Status.ISSUED)


def test_voiding_refunds_the_points_and_voids_the_coupon(client, role_user, member, coupon, reward):
    client.force_login(role_user("store_manager"))
    assert points_balance(member=member).available == 2000
    detail = page(client.get(reverse("staff:member-detail", args=[member.member_no])))
    assert f'href="{void_url(coupon)}"' in detail
    assert "Void (refund 1000 points)" in detail
    response = client.post(void_url(coupon), VOID, follow=True)
    assert "Redemption voided: 1000 points refunded" in page(response)
    assert points_balance(member=member).available == 3000
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.VOID
    assert Redemption.objects.get().status == Redemption.Status.VOID
    reward.refresh_from_db()
    assert reward.stock == 5
    entry = AuditEntry.objects.get(action="reward.void")
    assert entry.details["reason"] == "Customer changed their mind"
    redemption = Redemption.objects.get()
    assert redemption.void_reason == "Customer changed their mind"
    assert redemption.refund_transaction.reason == "Customer changed their mind"
    looked_up = page(client.get(f"{URL}?code={coupon.code}"))
    assert "This coupon was cancelled" in looked_up


def test_a_used_coupon_cannot_be_voided(client, role_user, member, coupon, store):
    coupon_use(code=coupon.code, store=store)
    client.force_login(role_user("store_manager"))
    detail = page(client.get(reverse("staff:member-detail", args=[member.member_no])))
    assert "Void (refund" not in detail
    response = client.post(void_url(coupon), VOID)
    assert response.status_code == 400
    assert "This coupon has already been used." in page(response)
    assert points_balance(member=member).available == 2000


def test_store_staff_see_no_void_button(staff_client, member, coupon):
    detail = page(staff_client.get(reverse("staff:member-detail", args=[member.member_no])))
    assert coupon.code in detail
    assert "Void (refund" not in detail


def test_voiding_asks_first_with_the_points_that_go_back(client, role_user, coupon):
    client.force_login(role_user("store_manager"))
    html = page(client.get(void_url(coupon)))
    assert coupon.code in html
    assert '<label for="id_reason">Reason for voiding</label>' in html
    assert "Yes, void this coupon and refund the points" in html
    assert "Void and refund 1000 points" in html
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.ISSUED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"confirm": "on"}, "Give a reason: it is kept with the refund."),
        ({"reason": "   ", "confirm": "on"}, "Give a reason: it is kept with the refund."),
        ({"reason": "Changed mind"}, "Tick the box to confirm."),
    ],
)
def test_voiding_needs_a_reason_and_the_tick(client, role_user, member, coupon, data, message):
    client.force_login(role_user("store_manager"))
    response = client.post(void_url(coupon), data)
    assert response.status_code == 400
    assert message in page(response)
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.ISSUED
    assert points_balance(member=member).available == 2000
    assert not AuditEntry.objects.filter(action="reward.void").exists()
