"""A marketer opens the analytics dashboard: every chart draws, nothing errs, a CSV downloads,
and at 390 px nothing scrolls sideways, in either language."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from analytics.charts import PANELS
from tests.analytics.conftest import rollups_for_every_panel
from tests.browser.test_page_width import SCROLLING_BOXES, WIDE_ELEMENTS, WIDTH
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


def _open_dashboard(page) -> None:
    page.goto(page.base_url + "/staff/analytics/")
    # Every panel arrives by its own htmx request and draws its chart into a canvas.
    for name in PANELS:
        page.locator(f"#chart-{name}-chart canvas").first.wait_for(state="attached")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_marketer_reads_every_chart_and_downloads_a_csv(page, language):
    rollups_for_every_panel()
    _sign_in(page, make_role_user("marketer"), language)
    _open_dashboard(page)
    assert page.locator(".chart canvas").count() >= len(PANELS)
    assert page.locator(".panel-empty").count() == 0
    assert page.locator(".alert-high-risk").count() == 0  # 500 of 4000: below 30 %

    # The table view opens and reads the same figures.
    members = page.locator("#panel-members")
    members.locator("summary").click()
    assert "4300" in members.locator("table").inner_text()

    with page.expect_download() as download_info:
        page.locator("#panel-points .csv-link").click()
    path = download_info.value.path()
    with open(path, "rb") as handle:
        body = handle.read()
    assert body.startswith(b"\xef\xbb\xbf")
    assert b"2026-03,27000,12000,1500" in body


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_dashboard_fits_a_phone_with_every_table_open(page, language):
    rollups_for_every_panel()
    _sign_in(page, make_role_user("marketer"), language)
    _open_dashboard(page)
    assert page.locator("html").get_attribute("lang") == language
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, page.evaluate(WIDE_ELEMENTS, WIDTH)
    assert page.evaluate(SCROLLING_BOXES) == []
