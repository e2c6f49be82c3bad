"""A marketer reads a campaign's results on a phone: the chart starts under the CSP, the
table view says the same, nothing scrolls sideways, and a refresh swaps the panel in place."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client

from campaigns.models import CampaignResult
from tests.campaigns.results_world import build_world
from tests.conftest import make_role_user

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": page.base_url,
            },
            {"name": settings.LANGUAGE_COOKIE_NAME, "value": "zh-hans", "url": page.base_url},
        ]
    )


def test_a_marketer_reads_and_refreshes_the_results_on_a_phone(page, settings):
    settings.CAMPAIGN_EMAIL_UNIT_PRICE = Decimal("0.10")
    world = build_world()
    _sign_in(page, make_role_user("marketer"))

    page.goto(f"{page.base_url}/staff/campaigns/{world.campaign.pk}/results/")

    panel = page.locator("#campaign-results")
    assert "与对照组相比的效果" in panel.inner_text()
    # ECharts drew the chart from the json_script option (no inline script under the CSP).
    page.locator("#campaign-results .chart canvas").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The table view holds each arm's figures: 6 treated, 2 conversions, 33.3 %.
    page.get_by_text("表格：实验组与对照组").click()
    row = page.locator(".chart-table tbody tr").first
    assert "6" in row.inner_text() and "33.3%" in row.inner_text()
    assert "¥24.60" in panel.inner_text()
    assert not CampaignResult.objects.exists()

    with page.expect_response(lambda response: response.url.endswith("/refresh/")) as answer:
        page.get_by_role("button", name="立即重新计算效果").click()
    assert answer.value.status == 200
    # htmx swapped the panel in place, and charts.js started its new chart.
    page.locator("#campaign-results .chart canvas").wait_for()
    assert CampaignResult.objects.filter(campaign=world.campaign).exists()
    assert page.url.endswith(f"/staff/campaigns/{world.campaign.pk}/results/")
    assert "¥24.60" in page.locator("#campaign-results").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
