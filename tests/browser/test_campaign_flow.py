"""The whole campaign, as the people involved meet it: a marketer builds a segment in the
builder and watches the count change, creates a bonus-points campaign with an in-portal
notice and an SMS, launches it after the confirmation step, the campaign runs, and the
member logs in to the portal and finds the points and the notice."""

from __future__ import annotations

import datetime
import re
import zoneinfo

import pytest
from django.conf import settings
from django.test import Client

from campaigns.launch import campaigns_tick
from campaigns.models import Campaign, OutboxMessage, Segment
from members import sms
from tests.browser.test_page_width import WIDE_ELEMENTS, WIDTH
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
# A Tuesday morning in Shanghai: outside quiet hours, so the SMS goes at once.
MORNING = datetime.datetime(2026, 9, 8, 10, 0, tzinfo=SHANGHAI)


def _sign_in_as(page, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": page.base_url,
            }
        ]
    )


def _count(page, expected: int) -> None:
    page.locator(f'#segment-preview [data-count="{expected}"]').wait_for()


def _fits_a_phone(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, page.evaluate(WIDE_ELEMENTS, WIDTH)


def test_a_marketer_launches_a_bonus_campaign_and_the_member_sees_points_and_notice(
    browser, page, time_machine
):
    time_machine.move_to(MORNING, tick=True)
    shanghai, beijing = StoreFactory(code="SH001"), StoreFactory(code="BJ001")
    member = MemberFactory(
        name="陈小红",
        city="上海",
        home_store=shanghai,
        consent_sms=True,
        user=UserFactory(email="member@example.com"),
    )
    MemberFactory(city="上海", home_store=shanghai)
    MemberFactory(city="北京", home_store=beijing)

    # The marketer builds "members in Shanghai" and watches the count go from 3 to 2.
    _sign_in_as(page, make_role_user("marketer"))
    page.goto(page.base_url + "/staff/segments/new/")
    page.locator(".sb-add-condition").first.click()
    _count(page, 3)  # the first condition, tier = regular: everyone
    page.locator(".sb-add-condition").first.click()
    city = page.locator(".sb-condition").nth(1)
    city.locator(".sb-field select").select_option("city")
    city.locator(".sb-value input").fill("上海")
    _count(page, 2)
    page.locator("#id_name").fill("上海会员")
    page.locator("#segment-form button[type=submit]:not(.secondary)").click()
    page.wait_for_url("**/staff/segments/*/")
    segment = Segment.objects.get()

    # A bonus-points campaign for them, with a notice and an SMS, and no holdout so the
    # member surely gets it.
    page.goto(page.base_url + "/staff/campaigns/")
    page.locator("a[href$='/staff/campaigns/new/?kind=bonus']").click()
    page.locator("#id_name").fill("秋季回馈")
    page.locator("#id_segment").select_option(str(segment.pk))
    page.locator("#id_bonus_points").fill("500")
    page.locator("#id_send_sms").check()
    page.locator("#id_send_portal").check()
    page.locator("#id_message_subject_zh").fill("秋季回馈")
    page.locator("#id_message_body_zh").fill("{name}，送您500积分！")
    page.locator("#id_holdout_percent").fill("0")
    _fits_a_phone(page)
    page.locator("form.campaign-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/staff/campaigns/\d+/$"))
    campaign = Campaign.objects.get()
    # Before launch: two members match, 500 points each, ¥10 at ¥0.01 a point.
    assert page.locator(".funnel-matching").inner_text() == "2"
    assert "1000" in page.locator(".cost-points").inner_text()
    _fits_a_phone(page)

    # Launching asks first; nothing has happened until it is confirmed.
    page.locator(f"a[href$='/staff/campaigns/{campaign.pk}/launch/']").click()
    page.wait_for_url(f"**/staff/campaigns/{campaign.pk}/launch/")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    _fits_a_phone(page)
    page.locator("form.launch-form button[name=confirm]").click()
    page.wait_for_url(re.compile(rf"/staff/campaigns/{campaign.pk}/$"))

    # "Now" started it at once (the task runs in the request without a broker); beat's
    # tick then dispatches the outbox.
    campaigns_tick(now=datetime.datetime.now(tz=SHANGHAI))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.audience_size == 2
    page.reload()
    assert page.locator(".campaign-message-counts").count() == 1
    sent_sms = OutboxMessage.objects.get(member=member, channel=OutboxMessage.Channel.SMS)
    assert sent_sms.status == OutboxMessage.Status.SENT
    assert [m for m in sms.outbox if "送您500积分" in str(m)]

    # The member logs in on the phone: the points and the unread notice are on the home page.
    member_page = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN"
    ).new_page()
    member_page.set_default_timeout(10_000)
    member_page.goto(page.base_url + "/accounts/login/?next=/")
    member_page.fill("input[name=login]", "member@example.com")
    member_page.fill("input[name=password]", "demo-pass-123")
    member_page.locator("form:has(input[name=password]) button[type=submit]").first.click()
    member_page.wait_for_url(re.compile(re.escape(page.base_url) + "/$"))
    assert member_page.locator(".points-balance").inner_text() == "500"
    assert member_page.locator(".notices-unread").inner_text() == "1"
    member_page.locator(".notice-list a", has_text="秋季回馈").click()
    assert "陈小红，送您500积分！" in member_page.locator("main").inner_text()
    member_page.context.close()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_campaign_pages_fit_a_phone_in_either_language(page, language):
    from decimal import Decimal

    from campaigns.services import campaign_create
    from points.models import Category, Reward

    Category.objects.create(code="apparel", name_zh="服装", name_en="Apparel")
    StoreFactory(code="SH001", name="上海南京路店")
    Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal(10),
    )
    MemberFactory(consent_sms=True)
    marketer = make_role_user("marketer", email="a.rather.long.marketer.address@example.com")
    segment = Segment.objects.create(
        name="普通会员",
        rules={
            "version": 1,
            "rule": {"group": "and", "rules": [{"field": "tier", "op": "eq", "value": "regular"}]},
        },
    )
    campaign = campaign_create(
        actor=marketer,
        name="春季回馈",
        kind=Campaign.Kind.BONUS,
        segment=segment,
        bonus_points=100,
        send_sms=True,
        message_body_zh="{name}，送您100积分",
    )
    _sign_in_as(page, marketer)
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": page.base_url}]
    )
    for path in (
        "/staff/campaigns/",
        "/staff/campaigns/new/",
        "/staff/campaigns/new/?kind=bonus",
        "/staff/campaigns/new/?kind=multiplier",
        "/staff/campaigns/new/?kind=coupon",
        "/staff/campaigns/new/?kind=message",
        f"/staff/campaigns/{campaign.pk}/",
        f"/staff/campaigns/{campaign.pk}/edit/",
        f"/staff/campaigns/{campaign.pk}/launch/",
        "/staff/campaigns/win-back/",
    ):
        response = page.goto(page.base_url + path)
        assert response is not None and response.status == 200, path
        assert page.locator("html").get_attribute("lang") == language
        _fits_a_phone(page)
