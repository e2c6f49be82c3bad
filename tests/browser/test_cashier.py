"""A cashier logs in, finds a member by phone with live search and enrols a new shopper."""

from __future__ import annotations

import re

import pytest

from members.models import AuditEntry, Member
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page, email: str) -> None:
    page.goto(page.base_url + "/accounts/login/?next=/staff/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", "demo-pass-123")
    page.locator("form:has(input[name=password]) button[type=submit]").first.click()
    page.locator("input[name=q]").wait_for()


def test_cashier_finds_a_member_by_phone_and_reveals_it_with_an_audit_entry(page):
    store = StoreFactory(code="SH001", name="上海南京路店")
    make_role_user("store_staff", email="cashier@example.com", stores=[store])
    MemberFactory(name="周杰", phone="+8613711112222")
    MemberFactory(name="周敏", phone="+8613733334444")

    log_in(page, "cashier@example.com")
    # Typing a name shows live results without pressing Enter (htmx).
    page.fill("input[name=q]", "周")
    results = page.locator("#search-results")
    results.get_by_text("周敏").wait_for()
    assert "周杰" in results.inner_text()
    assert "137****2222" in results.inner_text()
    assert "13711112222" not in page.content()

    # A whole phone goes straight to the member.
    page.fill("input[name=q]", "137 1111 2222")
    page.wait_for_url(re.compile(r"/staff/members/8\d{11}/$"))
    assert "周杰" in page.locator("main").inner_text()
    page.locator("form[action$='/reveal-phone/'] button").click()
    page.get_by_text("13711112222").wait_for()
    assert AuditEntry.objects.filter(action="member.reveal_phone").count() == 1


def test_cashier_enrols_a_new_shopper_from_an_unknown_phone(page):
    store = StoreFactory(code="SH001", name="上海南京路店")
    make_role_user("store_staff", email="cashier@example.com", stores=[store])

    log_in(page, "cashier@example.com")
    page.fill("input[name=q]", "13655556666")
    page.locator("#search-results a[href*='/staff/members/new/']").click()

    assert page.input_value("input[name=phone]").replace(" ", "").endswith("13655556666")
    page.fill("input[name=name]", "林小雨")
    page.check("input[name=accept_privacy]")
    page.locator("form:has(input[name=phone]) button[type=submit]").first.click()

    page.wait_for_url(re.compile(r"/staff/members/8\d{11}/$"))
    member = Member.objects.get(phone="+8613655556666")
    assert member.name == "林小雨"
    assert member.enrolment_store.code == "SH001"
    assert " ".join(re.findall(".{1,4}", member.member_no)) in page.locator("main").inner_text()

    # Enrolling the same phone again points at the existing member, and writes nothing.
    page.goto(page.base_url + "/staff/members/new/")
    page.fill("input[name=phone]", "136 5555 6666")
    page.fill("input[name=name]", "林小雨")
    page.check("input[name=accept_privacy]")
    page.locator("form:has(input[name=phone]) button[type=submit]").first.click()
    page.locator(f"main a[href$='/staff/members/{member.member_no}/']").wait_for()
    assert Member.objects.count() == 1
