"""A marketer opens the analytics dashboard: every chart draws, nothing errs, a CSV downloads,
and at 390 px nothing scrolls sideways, in either language."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from analytics import metrics
from analytics.charts import PANELS
from analytics.models import MemberFigures, Rollup
from core.models import JobRun
from tests.analytics.conftest import AS_OF, MAR, rollup, rollups_for_every_panel
from tests.analytics.dashboard_history import dashboard_history
from tests.browser.test_page_width import SCROLLING_BOXES, WIDE_ELEMENTS, WIDTH
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory

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


def _nightly_run() -> None:
    """A small history and a real nightly analytics run on 2026-03-31; the churn job (not
    this one) writes the churn snapshots, so a stand-in for its rows."""
    stores = StoreFactory(code="X01"), StoreFactory(code="Y01")
    dashboard_history(stores=stores)
    call_command("run_nightly", date=AS_OF.isoformat(), job=["analytics"])
    for band, value in (("high", 1), ("medium", 1), ("low", 2)):
        rollup(metrics.CHURN_BAND_MEMBERS, AS_OF, value, dim=band)
    for decile, value in (("1", 2), ("5", 1), ("8", 1)):
        rollup(metrics.CHURN_DECILE_MEMBERS, AS_OF, value, dim=decile)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_marketer_reads_every_chart_after_a_nightly_run_and_downloads_a_csv(page, language):
    _nightly_run()
    assert JobRun.objects.filter(job="analytics", status=JobRun.Status.SUCCEEDED).exists()
    _sign_in(page, make_role_user("marketer"), language)
    _open_dashboard(page)
    assert page.locator(".chart canvas").count() == len(PANELS)
    assert page.locator(".panel-empty").count() == 0
    assert "2026-03-31" in page.locator(".as-of").inner_text()

    # The table view opens and reads the job's figures.
    total = Rollup.objects.get(
        metric=metrics.MEMBERS_TOTAL, period=MAR, store_key=0, tier_key=0, dim=""
    ).value
    members = page.locator("#panel-members")
    members.locator("summary").click()
    march = members.locator("tr", has=page.locator("th", has_text="2026-03"))
    assert march.locator("td").first.inner_text() == str(int(total))

    issued = Rollup.objects.get(
        metric=metrics.POINTS_ISSUED, period=MAR, store_key=0, tier_key=0, dim=""
    ).value
    with page.expect_download() as download_info:
        page.locator("#panel-points .csv-link").click()
    with open(download_info.value.path(), "rb") as handle:
        body = handle.read()
    assert body.startswith(b"\xef\xbb\xbf")
    assert f"\r\n2026-03,{int(issued)},".encode() in body


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_dashboard_fits_a_phone_with_every_table_open(page, language):
    # Every panel full (the RFM table's 75 cells, a cohort triangle): the widest it gets.
    rollups_for_every_panel()
    _sign_in(page, make_role_user("marketer"), language)
    _open_dashboard(page)
    assert page.locator("html").get_attribute("lang") == language
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, page.evaluate(WIDE_ELEMENTS, WIDTH)
    assert page.evaluate(SCROLLING_BOXES) == []

    # The members behind an alert: a table of seven columns, one card per member on a phone.
    member = MemberFactory(name="欧阳娜娜" * 3, phone="+8613812341234")
    MemberFigures.objects.create(
        member=member,
        as_of=AS_OF,
        stage="silent",
        churn_band="high",
        churn_probability=0.91,
        last_purchase_at=timezone.now(),
        updated_at=timezone.now(),
    )
    page.goto(page.base_url + "/staff/analytics/members/?kind=high-risk")
    assert "138****1234" in page.locator("table").inner_text()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, page.evaluate(WIDE_ELEMENTS, WIDTH)
    assert page.evaluate(SCROLLING_BOXES) == []
