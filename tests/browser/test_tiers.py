"""A member watches the tier progress bar move after a cashier records a purchase."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.utils import timezone

from points.services import purchase_record
from tests.browser.test_points import log_in
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_member_sees_tier_progress_change_after_a_purchase_at_the_till(browser, page):
    store = StoreFactory(code="SH001", name="上海南京路店")
    member = MemberFactory(name="陈小红", user=UserFactory(email="member@example.com"))
    purchase_record(
        member=member,
        store=store,
        receipt_no="R-OLD",
        occurred_at=timezone.now(),
        now=timezone.now(),
        amount=Decimal(1200),
    )

    log_in(page, "member@example.com", "/")
    panel = page.locator(".tier-panel")
    assert "普通会员" in panel.locator(".tier-name").inner_text()
    spend_bar = panel.locator("progress#next-spend")
    assert spend_bar.get_attribute("value") == "1200"
    assert spend_bar.get_attribute("max") == "2000"
    assert "800" in panel.locator(".tier-needed").inner_text()

    # A cashier records a ¥500 purchase: still Regular, but closer.
    make_role_user("store_staff", email="cashier@example.com", stores=[store])
    cashier = browser.new_context(
        viewport={"width": 1024, "height": 800}, locale="zh-CN"
    ).new_page()
    cashier.set_default_timeout(10_000)
    cashier.base_url = page.base_url
    log_in(cashier, "cashier@example.com", "/staff/")

    def record(receipt: str, amount: str) -> None:
        cashier.goto(f"{page.base_url}/staff/purchases/new/?member={member.member_no}")
        cashier.fill("input[name=receipt_no]", receipt)
        cashier.fill("input[name=amount]", amount)
        cashier.locator("form.purchase-form button[type=submit]").click()
        cashier.wait_for_url(re.compile(rf"/staff/members/{member.member_no}/$"))

    record("R-1001", "500.00")
    page.reload()
    assert page.locator("progress#next-spend").get_attribute("value") == "1700"
    assert "300" in page.locator(".tier-panel .tier-needed").inner_text()

    # Another ¥400 crosses ¥2,000: Silver at once, with the bar now towards Gold and retention.
    record("R-1002", "400.00")
    assert "银卡会员" in cashier.locator(".member-tier .tier-name").inner_text()
    cashier.context.close()
    page.reload()
    panel = page.locator(".tier-panel")
    assert "银卡会员" in panel.locator(".tier-name").inner_text()
    assert panel.locator("progress#next-spend").get_attribute("max") == "8000"
    assert panel.locator("progress#retain-spend").count() == 1
    assert "有效期至" in panel.locator(".tier-valid").inner_text()
