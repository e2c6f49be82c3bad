"""Each panel shows exactly what the roll-up rows say, in its table view and its CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from analytics import metrics
from analytics.charts import PANELS
from tests.analytics.conftest import AS_OF, FEB, JAN, MAR, login, rollup, rollups_for_every_panel
from tiers.models import TierLevel

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    login(client, "marketer")
    return client


def _panel(client, name: str, query: str = "") -> str:
    response = client.get(f"/staff/analytics/panel/{name}/?{query}", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def _csv(client, name: str, query: str = "") -> tuple[bytes, list[list[str]]]:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get(f"/staff/analytics/panel/{name}/csv/?{query}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    return body, list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _row(html: str, heading: str) -> str:
    """The table view's row whose heading cell is `heading`."""
    return html[html.index(f'<th scope="row">{heading}</th>') :].split("</tr>")[0]


def test_members_panel(marketer):
    rollup(metrics.MEMBERS_TOTAL, MAR, 4100)
    rollup(metrics.MEMBERS_NEW, MAR, 100)
    rollup(metrics.MEMBERS_ACTIVE, MAR, 1234)
    rollup(metrics.STAGE_MEMBERS, AS_OF, 1, dim="active")
    html = _panel(marketer, "members")
    assert '<th scope="row">2026-03</th>' in html
    assert ">4100</td>" in html and ">100</td>" in html and ">1234</td>" in html
    assert 'data-chart-option="chart-members-option"' in html


def test_tier_distribution_and_migration(marketer):
    gold = TierLevel.objects.order_by("rank").last()
    rollup(metrics.TIER_MEMBERS, AS_OF, 300, dim=TierLevel.objects.order_by("rank").first().code)
    rollup(metrics.TIER_MEMBERS, AS_OF, 100, dim=gold.code)
    html = _panel(marketer, "tier-distribution")
    assert gold.name_zh in html
    assert ">100</td>" in html and ">25.0</td>" in html  # 100 of 400
    rollup(metrics.TIER_UP, FEB, 12)
    rollup(metrics.TIER_DOWN, FEB, 5)
    html = _panel(marketer, "tier-migration", "start=2026-01&end=2026-03")
    assert '<th scope="row">2026-02</th>' in html
    assert ">12</td>" in html and ">5</td>" in html and ">7</td>" in html


def test_revenue_and_frequency(marketer):
    rollup(metrics.ORDERS, MAR, 200)
    rollup(metrics.REVENUE, MAR, "30000.00")
    rollup(metrics.RETURNS, MAR, "1500.50")
    rollup(metrics.BUYERS, MAR, 160)
    rollup(metrics.REPEAT_BUYERS, MAR, 40)
    html = _panel(marketer, "revenue", "start=2026-03&end=2026-03")
    # Net revenue 30000 − 1500.50; average order value 30000 ÷ 200.
    assert ">28499.50</td>" in html and ">150.00</td>" in html
    html = _panel(marketer, "frequency", "start=2026-03&end=2026-03")
    # 200 orders ÷ 160 buyers; 40 ÷ 160 repeat buyers.
    assert ">1.25</td>" in html and ">25.0</td>" in html


def test_points_panel(marketer):
    rollup(metrics.POINTS_ISSUED, JAN, 9000)
    rollup(metrics.POINTS_REDEEMED, JAN, 4000)
    rollup(metrics.POINTS_EXPIRED, JAN, 700)
    html = _panel(marketer, "points", "start=2026-01&end=2026-03")
    assert ">9000</td>" in html and ">4000</td>" in html and ">700</td>" in html


def _lots(month, issued, redeemed, expired, open_):
    rollup(metrics.LOT_ISSUED, month, issued)
    rollup(metrics.LOT_REDEEMED, month, redeemed)
    rollup(metrics.LOT_EXPIRED, month, expired)
    rollup(metrics.LOT_OPEN, month, open_)


def test_liability_uses_the_average_breakage_of_closed_months(marketer):
    import datetime

    rollup(metrics.POINTS_OUTSTANDING, AS_OF, 100000)
    _lots(datetime.date(2024, 1, 1), 1000, 800, 200, 0)  # closed, breakage 20 %
    _lots(datetime.date(2024, 2, 1), 1000, 700, 300, 0)  # closed, breakage 30 %
    _lots(datetime.date(2026, 1, 1), 5000, 1000, 0, 4000)  # open: not in the average
    html = _panel(marketer, "liability", "start=2024-01&end=2026-03")
    # 100000 points × ¥0.01 × (1 − 25 %) = ¥750.00
    assert "¥750.00" in html
    assert "25.0%" in html
    closed = _row(html, "2024-01")
    assert ">1000</td>" in closed and ">80.0</td>" in closed and ">20.0</td>" in closed
    assert ">30.0</td>" in _row(html, "2024-02")
    still_open = _row(html, "2026-01")
    # Redemption rate 1000 ÷ 5000; no breakage yet.
    assert ">4000</td>" in still_open and ">20.0</td>" in still_open and ">0.0</td>" in still_open


@override_settings(ANALYTICS_EXPECTED_BREAKAGE=0.4)
def test_liability_takes_the_expected_breakage_setting_when_set(marketer):
    rollup(metrics.POINTS_OUTSTANDING, AS_OF, 100000)
    html = _panel(marketer, "liability")
    assert "¥600.00" in html and "40.0%" in html


def test_redemption_curve_is_cumulative_and_stops_at_today(marketer):
    _lots(FEB, 1000, 500, 0, 500)
    rollup(metrics.LOT_REDEEMED_BY_AGE, FEB, 100, dim="0")
    rollup(metrics.LOT_REDEEMED_BY_AGE, FEB, 300, dim="1")
    rollup(metrics.LOT_REDEEMED_BY_AGE, JAN, 50, dim="2")
    _lots(JAN, 100, 50, 0, 50)
    html = _panel(marketer, "redemption-curve", "start=2026-01&end=2026-03")
    # February: 10 % spent in its own month, 40 % by the next; month 2 (April) not yet.
    row = _row(html, "2026-02")
    assert ">10.0</td>" in row and ">40.0</td>" in row and ">—</td>" in row


def test_stages_panel(marketer):
    rollup(metrics.STAGE_MEMBERS, AS_OF, 70, dim="active")
    rollup(metrics.STAGE_MEMBERS, AS_OF, 30, dim="churned")
    html = _panel(marketer, "stages")
    assert ">70</td>" in html and ">70.0</td>" in html and ">30.0</td>" in html
    assert "2026-03-31" in html


def test_rfm_grid_sums_m_into_each_square_and_shows_revenue_share(marketer):
    rollup(metrics.RFM_MEMBERS, AS_OF, 10, dim="5-5-5")
    rollup(metrics.RFM_MEMBERS, AS_OF, 5, dim="5-5-1")
    rollup(metrics.RFM_MEMBERS, AS_OF, 20, dim="1-1-1")
    rollup(metrics.RFM_REVENUE, AS_OF, "7000.00", dim="5-5-5")
    rollup(metrics.RFM_REVENUE, AS_OF, "500.00", dim="5-5-1")
    rollup(metrics.RFM_REVENUE, AS_OF, "2500.00", dim="1-1-1")
    html = _panel(marketer, "rfm")
    assert '<th scope="row">5-5-5</th>' in html and ">70.0</td>" in html
    assert "重要价值</td>" in _row(html, "5-5-5")
    assert "一般挽留</td>" in _row(html, "1-1-1")
    assert ">7000.00</td>" in html
    # The square R5 × F5 holds both M cells: 15 members, 75 % of revenue.
    assert "15\\n75.0%" in html


def test_cohort_triangle(marketer):
    rollup(metrics.COHORT_SIZE, JAN, 200)
    rollup(metrics.COHORT_ACTIVE, JAN, 200, dim="0")
    rollup(metrics.COHORT_ACTIVE, JAN, 50, dim="1")
    rollup(metrics.COHORT_ACTIVE, JAN, 30, dim="2")
    rollup(metrics.COHORT_SIZE, MAR, 100)
    rollup(metrics.COHORT_ACTIVE, MAR, 100, dim="0")
    html = _panel(marketer, "cohorts", "start=2026-01&end=2026-03")
    jan = _row(html, "2026-01")
    assert ">100.0</td>" in jan and ">25.0</td>" in jan and ">15.0</td>" in jan
    mar = _row(html, "2026-03")
    # March's cohort has no month 1 or 2 yet: empty, not 0 %.
    assert mar.count(">—</td>") == 2


def test_churn_panel(marketer):
    rollup(metrics.CHURN_BAND_MEMBERS, AS_OF, 20, dim="high")
    rollup(metrics.CHURN_BAND_MEMBERS, AS_OF, 80, dim="low")
    rollup(metrics.CHURN_DECILE_MEMBERS, AS_OF, 60, dim="0")
    rollup(metrics.CHURN_DECILE_MEMBERS, AS_OF, 20, dim="9")
    html = _panel(marketer, "churn")
    assert ">20</td>" in html and ">80.0</td>" in html and ">75.0</td>" in html


def test_a_panel_with_no_rows_says_so_in_words(marketer):
    html = _panel(marketer, "members")
    assert "data-chart-option" not in html
    assert "panel-empty" in html


def test_an_unknown_panel_is_not_found(marketer):
    assert marketer.get("/staff/analytics/panel/nope/").status_code == 404


def test_without_javascript_a_panel_is_a_page_of_its_own(marketer):
    rollup(metrics.MEMBERS_TOTAL, MAR, 4100)
    response = marketer.get("/staff/analytics/panel/members/?start=2026-03&end=2026-03")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and "echarts.min.js" in html and ">4100</td>" in html


def test_the_dashboard_loads_each_panel_by_htmx_with_a_link(marketer):
    rollup(metrics.STAGE_MEMBERS, AS_OF, 1, dim="active")
    html = marketer.get("/staff/analytics/").content.decode()
    # Last 12 months up to the last run's month by default, in every panel's request.
    query = "start=2025-04&amp;end=2026-03&amp;store=0&amp;tier=0"
    for name in ("members", "rfm", "cohorts", "churn", "liability"):
        url = f"/staff/analytics/panel/{name}/?{query}"
        assert f'hx-get="{url}"' in html
        assert f'href="{url}"' in html
    assert "2026-03-31" in html


@pytest.mark.parametrize(
    "query",
    ["start=2026-13", "end=March", "start=2026-03&end=2026-01", "start=1990-01&end=2026-01"],
)
def test_bad_filters_are_a_clear_400(marketer, query):
    response = marketer.get(f"/staff/analytics/?{query}")
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()


def test_csv_has_bom_header_numbers_bare_and_text_guarded(marketer):
    rollup(metrics.POINTS_ISSUED, JAN, 9000)
    rollup(metrics.POINTS_REDEEMED, JAN, 4000)
    rollup(metrics.POINTS_OTHER, JAN, -150)
    body, rows = _csv(marketer, "points", "start=2026-01&end=2026-01")
    assert body.startswith(b"\xef\xbb\xbf")
    assert rows[0] == ["Month", "Issued", "Redeemed", "Expired", "Other (reversals, adjustments)"]
    assert rows[1] == ["2026-01", "9000", "4000", "0", "-150"]
    # Numbers unquoted, and a negative one is a number, not a formula to defuse.
    assert b"\r\n2026-01,9000,4000,0,-150\r\n" in body

    # A tier code a spreadsheet would run as a formula comes out as text.
    rollup(metrics.TIER_MEMBERS, AS_OF, 3, dim="=HYPERLINK(1)")
    body, rows = _csv(marketer, "tier-distribution")
    assert rows[1][0] == "'=HYPERLINK(1)"
    assert rows[1][1] == "3"


def test_csv_as_the_reader_filtered(marketer, figures):
    a, _b = figures
    _body, rows = _csv(marketer, "members", f"start=2026-03&end=2026-03&store={a.pk}")
    assert rows[1] == ["2026-03", "4100", "100", "1234"]


@pytest.mark.parametrize("name", list(PANELS))
def test_a_panel_takes_the_same_queries_however_many_months(
    marketer, name, django_assert_num_queries
):
    query = "start=2025-01&end=2026-03"
    # The panel reads whole metrics at once, never a query per month, cell or cohort.
    _panel(marketer, name, query)  # the configuration each process keeps, read once
    with CaptureQueriesContext(connection) as few:
        _panel(marketer, name, query)
    rollups_for_every_panel()
    with django_assert_num_queries(len(few.captured_queries)):
        _panel(marketer, name, query)
