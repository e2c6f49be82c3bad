"""A shopper enrolled at the till follows the welcome SMS and logs in online with a code."""

from __future__ import annotations

import re

import pytest

from members.models import Member
from members.services import member_enroll

pytestmark = pytest.mark.django_db(transaction=True)


def code_from(outbox) -> str:
    assert outbox, "no SMS was sent"
    return re.search(r"\b(\d{6})\b", outbox[-1].text).group(1)


def test_a_member_enrolled_at_the_till_logs_in_with_an_sms_code(page, sms_outbox, store):
    member = member_enroll(
        phone="13812345678",
        name="王芳",
        channel=Member.Channel.STORE,
        store=store,
        welcome_sms=True,
    )
    (welcome,) = sms_outbox
    assert member.member_no in welcome.text
    link_text = re.search(r"“(.+?)”", welcome.text).group(1)

    page.goto(page.base_url + "/accounts/login/")
    page.get_by_role("link", name=link_text).click()
    page.get_by_label(re.compile("^手机号")).fill("138 1234 5678")
    page.locator("form:has(input[name=phone]) button[type=submit]").first.click()
    page.get_by_label("验证码").fill(code_from(sms_outbox))
    page.locator("form:has(input[name=code]) button[type=submit]").first.click()

    page.locator(".member-card").wait_for()
    card = page.locator(".member-card").inner_text()
    assert "王芳" in card
    assert member.member_no in card.replace(" ", "")
    member.refresh_from_db()
    assert member.user is not None and Member.objects.count() == 1
