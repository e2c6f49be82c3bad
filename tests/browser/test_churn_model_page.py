"""A marketer opens the churn model card: the calibration plot draws without errors and the
page fits a phone with its tables open, in either language."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.test import Client

from analytics.churn.services import churn_train
from tests.analytics.churn_history import history_build
from tests.browser.test_page_width import SCROLLING_BOXES, WIDE_ELEMENTS, WIDTH
from tests.conftest import make_role_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
]


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


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_marketer_reads_the_model_card_on_a_phone(page, language):
    history_build()
    churn_train(as_of=datetime.date(2026, 6, 30))
    _sign_in(page, make_role_user("marketer"), language)

    page.goto(page.base_url + "/staff/analytics/model/")
    page.locator("#churn-calibration-chart canvas").first.wait_for(state="attached")

    assert page.locator("html").get_attribute("lang") == language
    page.locator(".churn-calibration summary").click()
    assert page.locator(".churn-calibration table tbody tr").count() >= 2
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, page.evaluate(WIDE_ELEMENTS, WIDTH)
    assert page.evaluate(SCROLLING_BOXES) == []
