"""A phone-only member who forgot the password logs in by SMS code and sets a new one."""

from __future__ import annotations

import re

import pytest

from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "fresh-lychee-2026"


def code_from(outbox) -> str:
    assert outbox, "no SMS was sent"
    return re.search(r"\b(\d{6})\b", outbox[-1].text).group(1)


def test_phone_only_member_sets_a_new_password_after_an_sms_code_login(page, sms_outbox):
    user = UserFactory(email=None, phone="+8613800000002", phone_verified=True)
    MemberFactory(user=user, phone=user.phone, name="手机会员", email=None)

    page.goto(page.base_url + "/accounts/login/code/")
    page.fill("input[name=phone]", "138 0000 0002")
    page.locator("form:has(input[name=phone]) button[type=submit]").first.click()
    page.locator("input[name=code]").wait_for()
    page.fill("input[name=code]", code_from(sms_outbox))
    page.locator("form:has(input[name=code]) button[type=submit]").first.click()
    page.locator(".member-card").wait_for()

    page.locator("header nav a[href='/profile/']").click()
    page.locator("a[href='/accounts/password/after-code/']").click()
    # Both fields are labelled, and no old password is asked for.
    page.get_by_label(re.compile("^(New password|新密码)$")).fill(NEW_PASSWORD)
    page.get_by_label(re.compile("^(New password confirmation|新密码确认)$")).fill(NEW_PASSWORD)
    assert page.locator("input[name=oldpassword], input[name=old_password]").count() == 0
    page.locator("form:has(input[name=new_password1]) button[type=submit]").click()
    page.locator(".message-success").wait_for()
    assert page.url.endswith("/profile/")
    assert page.locator("a[href='/accounts/password/after-code/']").count() == 0

    with page.expect_navigation():
        page.locator("form[action$='/accounts/logout/'] button").click()
    page.locator("header a[href$='/accounts/login/']").click()
    page.fill("input[name=login]", "13800000002")
    page.fill("input[name=password]", NEW_PASSWORD)
    page.locator("form:has(input[name=password]) button[type=submit]").first.click()
    page.locator(".member-card").wait_for()
    assert "手机会员" in page.locator(".member-card").inner_text()
