"""On a phone: a cashier's adjustment asks to confirm the new balance before it posts; an
administrator's large one waits for a second administrator; a manager voids a coupon with a
reason. Nothing scrolls sideways at 390 px."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.utils import timezone

from points.models import Account, Coupon, PointsAdjustment, Reward
from points.services import purchase_record, reward_redeem
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page, email: str, landing: str) -> None:
    page.goto(page.base_url + "/accounts/login/?next=" + landing)
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", "demo-pass-123")
    page.locator("form:has(input[name=password]) button[type=submit]").first.click()
    page.wait_for_url(re.compile(re.escape(landing) + "$"))


def log_out(page) -> None:
    page.context.clear_cookies()


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.fixture
def member():
    store = StoreFactory(code="SH001", name="上海南京路店")
    member = MemberFactory(name="陈小红")
    purchase_record(
        member=member,
        store=store,
        receipt_no="R-1",
        occurred_at=timezone.now(),
        amount=Decimal(1300),
    )
    return member


def test_a_cashier_confirms_the_new_balance_before_the_adjustment_posts(page, member):
    make_role_user("store_staff", email="cashier@example.com")
    url = f"/staff/members/{member.member_no}/adjust/"
    log_in(page, "cashier@example.com", url)
    page.fill("input[name=points]", "-300")
    page.fill("input[name=reason]", "重复积分")
    page.locator("form.adjust-form button[type=submit]").click()
    page.locator("form.adjust-confirm").wait_for()
    assert "余额 1300 → 1000，确认吗？" in page.locator(".adjust-preview").inner_text()
    assert fits(page)
    assert Account.objects.get(member=member).balance == 1300
    page.locator("form.adjust-confirm button[name=confirm]").click()
    page.wait_for_url(re.compile(rf"/staff/members/{member.member_no}/$"))
    assert Account.objects.get(member=member).balance == 1000


def test_a_large_adjustment_waits_for_a_second_administrator(page, member):
    make_role_user("administrator", email="admin1@example.com")
    make_role_user("administrator", email="admin2@example.com")
    log_in(page, "admin1@example.com", f"/staff/members/{member.member_no}/adjust/")
    page.fill("input[name=points]", "200000")
    page.fill("input[name=reason]", "系统迁移补录")
    page.locator("form.adjust-form button[type=submit]").click()
    page.locator(".adjust-needs-approval").wait_for()
    page.locator("form.adjust-confirm button[name=confirm]").click()
    page.wait_for_url(re.compile(r"/staff/adjustments/approvals/$"))
    assert page.locator(".adjustment-pending button").count() == 0  # not the requester's
    assert Account.objects.get(member=member).balance == 1300

    log_out(page)
    log_in(page, "admin2@example.com", "/staff/adjustments/approvals/")
    assert fits(page)
    page.locator(".adjustment-pending form[action$='/approve/'] button").click()
    page.wait_for_url(re.compile(r"/staff/adjustments/approvals/$"))
    assert PointsAdjustment.objects.get().status == "posted"
    assert Account.objects.get(member=member).balance == 201300


def test_a_manager_voids_a_coupon_with_a_reason(page, member):
    reward = Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal(10),
    )
    coupon = reward_redeem(member=member, reward=reward, idempotency_key="k").coupon
    make_role_user("store_manager", email="manager@example.com")
    log_in(page, "manager@example.com", f"/staff/members/{member.member_no}/")
    page.locator(f"a[href$='/redemptions/{coupon.redemption_id}/void/']").click()
    page.locator("form.void-form").wait_for()
    assert fits(page)
    page.fill("input[name=reason]", "顾客改变主意")
    page.check("input[name=confirm]")
    page.locator("form.void-form button[type=submit]").click()
    page.wait_for_url(re.compile(rf"/staff/members/{member.member_no}/$"))
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.VOID
    assert coupon.redemption.void_reason == "顾客改变主意"
