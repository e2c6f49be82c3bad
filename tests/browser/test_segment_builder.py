"""A marketer builds a segment in the builder and watches the count change as conditions
are added; the page fits a phone in either language."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from campaigns.models import Segment
from tests.browser.test_page_width import WIDE_ELEMENTS, WIDTH
from tests.campaigns.segment_population import population
from tests.conftest import make_role_user

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page, user, language: str) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": page.base_url,
            },
            {"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": page.base_url},
        ]
    )


def _count(page, expected: int) -> None:
    page.locator(f'#segment-preview [data-count="{expected}"]').wait_for()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_marketer_builds_a_segment_and_watches_the_count(page, language):
    population()
    _sign_in(page, make_role_user("marketer"), language)
    page.goto(page.base_url + "/staff/segments/new/")
    # An empty rule set: the preview says what is wrong, in place.
    page.locator("#segment-preview .segment-error").wait_for()

    page.locator(".sb-add-condition").first.click()
    first = page.locator(".sb-condition").nth(0)
    # The first field is the tier, "= regular": c, n and e (x is closed, z frozen).
    _count(page, 3)
    first.locator(".sb-op select").select_option("ge")
    first.locator(".sb-value select").select_option("silver")
    _count(page, 2)

    page.locator(".sb-add-condition").first.click()
    second = page.locator(".sb-condition").nth(1)
    second.locator(".sb-field select").select_option("city")
    # A city is free text: until it is typed the rules are incomplete, and the page says so.
    page.locator("#segment-preview .segment-error").wait_for()
    second.locator(".sb-value input").fill("北京")
    _count(page, 1)
    sample = page.locator(".segment-sample").inner_text()
    assert "****" in sample

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, page.evaluate(WIDE_ELEMENTS, WIDTH)

    page.locator("#id_name").fill("Silver+ in Beijing")
    page.locator("#segment-form button[type=submit]:not(.secondary)").click()
    page.wait_for_url("**/staff/segments/*/")
    segment = Segment.objects.get()
    assert segment.name == "Silver+ in Beijing"
    assert segment.rules["rule"]["rules"] == [
        {"field": "tier", "op": "ge", "value": "silver"},
        {"field": "city", "op": "eq", "value": "北京"},
    ]
    # The saved segment's page draws the same tree and counts the same.
    _count(page, 1)
    assert page.locator(".sb-condition").count() == 2


def test_an_auditor_reads_a_segment_without_changing_it(page):
    population()
    segment = Segment.objects.create(
        name="Gold",
        rules={
            "version": 1,
            "rule": {"group": "and", "rules": [{"field": "tier", "op": "ge", "value": "gold"}]},
        },
    )
    _sign_in(page, make_role_user("auditor"), "en")
    page.goto(page.base_url + f"/staff/segments/{segment.pk}/")
    # a is gold; x is gold but closed.
    _count(page, 1)
    assert page.locator(".sb-condition").count() == 1
    assert page.locator(".sb-condition select").first.is_disabled()
    assert page.locator(".sb-add-condition").count() == 0
    assert page.locator("#segment-form button[type=submit]:not(.secondary)").count() == 0
