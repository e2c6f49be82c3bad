"""A shopper joins on a phone with an SMS code, logs in again and shows the card."""

from __future__ import annotations

import re

import pytest

from members.models import Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)


def code_from(outbox) -> str:
    assert outbox, "no SMS was sent"
    return re.search(r"\b(\d{6})\b", outbox[-1].text).group(1)


def test_shopper_signs_up_with_a_phone_code_and_sees_the_member_card(page, sms_outbox):
    page.goto(page.base_url + "/")
    page.get_by_role("link", name=re.compile("Join|注册|加入")).first.click()

    page.fill("input[name=phone]", "13912345678")
    page.fill("input[name=name]", "陈小红")
    page.fill("input[name=password1]", "a-long-pass-4321")
    page.fill("input[name=password2]", "a-long-pass-4321")
    page.check("input[name=accept_privacy]")
    page.check("input[name=consent_sms]")
    page.locator("form:has(input[name=phone]) button[type=submit]").first.click()

    page.locator("input[name=code]").wait_for()
    page.fill("input[name=code]", code_from(sms_outbox))
    page.locator("form:has(input[name=code]) button[type=submit]").first.click()

    card = page.locator(".member-card")
    card.wait_for()
    member = Member.objects.get(phone="+8613912345678")
    assert "陈小红" in card.inner_text()
    grouped = " ".join(re.findall(".{1,4}", member.member_no))
    assert grouped in card.inner_text()
    assert card.locator(".qr svg").count() == 1
    assert card.locator(".barcode svg").count() == 1
    assert member.consent_sms is True

    # Log out, then back in with the phone and password.
    with page.expect_navigation():
        page.locator("form[action$='/accounts/logout/'] button").click()
    page.locator("header a[href$='/accounts/login/']").click()
    page.fill("input[name=login]", "139 1234 5678")
    page.fill("input[name=password]", "a-long-pass-4321")
    page.locator("form:has(input[name=password]) button[type=submit]").first.click()
    page.locator(".member-card").wait_for()
    assert grouped in page.locator(".member-card").inner_text()


def test_a_friend_joins_from_a_referral_link_and_shares_their_own_on_a_phone(page, sms_outbox):
    referrer = MemberFactory(referral_code="ABCD2345")
    page.goto(page.base_url + "/accounts/signup/?ref=ABCD2345")
    assert page.input_value("input[name=referral_code]") == "ABCD2345"

    page.fill("input[name=phone]", "13912345679")
    page.fill("input[name=name]", "陈小明")
    page.fill("input[name=password1]", "a-long-pass-4321")
    page.fill("input[name=password2]", "a-long-pass-4321")
    page.check("input[name=accept_privacy]")
    page.locator("form:has(input[name=phone]) button[type=submit]").first.click()
    page.locator("input[name=code]").wait_for()
    page.fill("input[name=code]", code_from(sms_outbox))
    page.locator("form:has(input[name=code]) button[type=submit]").first.click()
    page.locator(".member-card").wait_for()

    member = Member.objects.get(phone="+8613912345679")
    assert member.referrer == referrer

    page.get_by_role("link", name="邀请好友").click()
    card = page.locator(".referral-card")
    card.wait_for()
    assert member.referral_code in card.inner_text()
    assert f"?ref={member.referral_code}" in card.inner_text()
    assert card.locator(".qr svg").count() == 1
    # Nothing scrolls sideways on a 390 px phone, the long link included.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
