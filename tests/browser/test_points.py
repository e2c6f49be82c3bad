"""A member redeems CNY10 and shows the coupon; a cashier records a purchase and accepts it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.utils import timezone

from points.models import Account, Category, Coupon, PurchaseLine, Reward
from points.services import purchase_record
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page, email: str, landing: str) -> None:
    page.goto(page.base_url + "/accounts/login/?next=" + landing)
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", "demo-pass-123")
    page.locator("form:has(input[name=password]) button[type=submit]").first.click()
    page.wait_for_url(re.compile(re.escape(landing) + "$"))


def test_member_redeems_cny10_and_a_cashier_accepts_the_coupon_after_a_purchase(browser, page):
    store = StoreFactory(code="SH001", name="上海南京路店")
    Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal(10),
    )
    member = MemberFactory(name="陈小红", user=UserFactory(email="member@example.com"))
    purchase_record(
        member=member,
        store=store,
        receipt_no="R-OLD",
        occurred_at=timezone.now(),
        now=timezone.now(),
        amount=Decimal(1500),
    )

    # The member redeems CNY10 on the phone and sees the coupon with its QR code.
    log_in(page, "member@example.com", "/rewards/")
    page.locator("a[href$='/rewards/CNY10/redeem/']").click()
    page.locator("form.redeem-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/coupons/[A-Z0-9]+/$"))
    coupon = Coupon.objects.get(member=member)
    assert coupon.code[:4] in page.locator(".coupon-code").inner_text()
    assert page.locator("svg").count() >= 1
    assert Account.objects.get(member=member).balance == 500

    # A cashier, in another browser, records a purchase for the member and accepts the coupon.
    make_role_user("store_staff", email="cashier@example.com", stores=[store])
    cashier = browser.new_context(
        viewport={"width": 1024, "height": 800}, locale="zh-CN"
    ).new_page()
    cashier.set_default_timeout(10_000)
    cashier.base_url = page.base_url
    log_in(cashier, "cashier@example.com", "/staff/")
    cashier.goto(f"{page.base_url}/staff/purchases/new/?member={member.member_no}")
    cashier.fill("input[name=receipt_no]", "R-1001")
    cashier.fill("input[name=amount]", "268.00")
    cashier.locator("form.purchase-form button[type=submit]").click()
    cashier.wait_for_url(re.compile(rf"/staff/members/{member.member_no}/$"))
    assert "268" in cashier.locator("main").inner_text()
    assert Account.objects.get(member=member).balance == 500 + 268

    cashier.goto(page.base_url + "/staff/coupons/")
    cashier.fill("form.coupon-lookup input[name=code]", coupon.code.lower())
    cashier.locator("form.coupon-lookup button[type=submit]").click()
    cashier.locator("form.coupon-use-form").wait_for()
    cashier.fill("form.coupon-use-form input[name=receipt_no]", "R-1001")
    cashier.locator("form.coupon-use-form button[type=submit]").click()
    cashier.wait_for_load_state()
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.USED
    assert coupon.used_receipt_no == "R-1001"
    cashier.context.close()

    # The member's coupon list now shows it as used.
    page.goto(page.base_url + "/coupons/")
    used = page.locator(".coupon-item.coupon-used")
    assert used.count() == 1
    assert "10元优惠券" in used.inner_text()


def test_a_cashier_on_a_phone_finds_the_member_by_phone_and_picks_a_category(page):
    store = StoreFactory(code="SH001", name="上海南京路店")
    member = MemberFactory(name="陈小红", phone="+8613912345670")
    Category.objects.create(
        code="cosmetics_personal_care", name_zh="美妆及个人护理用品", name_en="Cosmetics"
    )
    make_role_user("store_staff", email="cashier@example.com", stores=[store])
    log_in(page, "cashier@example.com", "/staff/")
    page.goto(f"{page.base_url}/staff/purchases/new/")

    page.fill("input[name=member]", "139 1234 5670")
    page.locator(".found-member-name").wait_for()
    assert "陈小红" in page.locator(".found-member-name").inner_text()
    page.fill("input[name=receipt_no]", "R-2001")
    page.fill("input[name=amount]", "99.00")
    page.fill("input[name=line1_sku]", "LIP-1")
    page.select_option("select[name=line1_category]", "cosmetics_personal_care")
    page.fill("input[name=line1_amount]", "99.00")
    # Nothing scrolls sideways on a 390 px phone, long category names included.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("form.purchase-form button[type=submit]").click()
    page.wait_for_url(re.compile(rf"/staff/members/{member.member_no}/$"))

    line = PurchaseLine.objects.get()
    assert (line.purchase.store, line.category) == (store, "cosmetics_personal_care")
