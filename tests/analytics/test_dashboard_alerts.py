"""The early warning: an alert above the thresholds (not below) with the members behind it."""

from __future__ import annotations

import csv
import datetime
import io
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from analytics import metrics
from analytics.models import MemberFigures
from tests.analytics.conftest import AS_OF, FEB, MAR, login, rollup
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _bands(high: int, low: int, store: int = 0):
    rollup(metrics.CHURN_BAND_MEMBERS, AS_OF, high, store=store, dim="high")
    rollup(metrics.CHURN_BAND_MEMBERS, AS_OF, low, store=store, dim="low")


def _figures(
    member,
    *,
    store: int,
    band: str,
    probability: float,
    last: datetime.datetime,
    stage: str = "silent",
):
    return MemberFigures.objects.create(
        member=member,
        as_of=AS_OF,
        store_key=store,
        stage=stage,
        churn_band=band,
        churn_probability=probability,
        last_purchase_at=last,
        updated_at=timezone.now(),
    )


@override_settings(ANALYTICS_ALERT_HIGH_RISK_SHARE=0.30)
def test_the_high_risk_alert_shows_above_the_threshold_only(client):
    login(client, "marketer")
    _bands(high=29, low=71)
    assert "alert-high-risk" not in client.get("/staff/analytics/").content.decode()
    rollup(metrics.CHURN_BAND_MEMBERS, AS_OF, 2, dim="medium")  # 29 of 102: still below
    assert "alert-high-risk" not in client.get("/staff/analytics/").content.decode()


@override_settings(ANALYTICS_ALERT_HIGH_RISK_SHARE=0.30)
def test_the_high_risk_alert_links_to_the_members(client):
    login(client, "marketer")
    _bands(high=31, low=69)
    html = client.get("/staff/analytics/").content.decode()
    assert "alert-high-risk" in html
    assert "31" in html and "31.0%" in html
    assert "/staff/analytics/members/?kind=high-risk&amp;start=" in html


@override_settings(ANALYTICS_ALERT_CHURN_RATE=0.10)
def test_the_churn_alert_reads_the_latest_month(client):
    login(client, "marketer")
    rollup(metrics.CHURNED, FEB, 200)  # 20 % in February, but March is the latest
    rollup(metrics.NOT_CHURNED_AT_START, FEB, 1000)
    rollup(metrics.CHURNED, MAR, 100)
    rollup(metrics.NOT_CHURNED_AT_START, MAR, 1000)
    assert "alert-churn" not in client.get("/staff/analytics/").content.decode()
    rollup(metrics.CHURNED, MAR, 1, store=0, dim="x")  # a dim row is not the month's total
    assert "alert-churn" not in client.get("/staff/analytics/").content.decode()


@override_settings(ANALYTICS_ALERT_CHURN_RATE=0.10)
def test_the_churn_alert_above_the_threshold(client):
    login(client, "marketer")
    rollup(metrics.CHURNED, MAR, 101)
    rollup(metrics.NOT_CHURNED_AT_START, MAR, 1000)
    html = client.get("/staff/analytics/").content.decode()
    assert "alert-churn" in html and "10.1%" in html
    assert "kind=churned&amp;month=2026-03" in html


@pytest.fixture
def members_at_risk(stores):
    a, b = stores
    last = datetime.datetime(2025, 12, 1, 10, tzinfo=SHANGHAI)
    ours = MemberFactory(phone="+8613812341234", name="=SUM(A1)")
    theirs = MemberFactory(phone="+8613900001111")
    calm = MemberFactory()
    _figures(ours, store=a.pk, band="high", probability=0.8123, last=last)
    _figures(theirs, store=b.pk, band="high", probability=0.9, last=last)
    _figures(calm, store=a.pk, band="low", probability=0.1, last=last)
    return ours, theirs, calm


def test_the_high_risk_list_and_csv(client, stores, members_at_risk):
    ours, theirs, calm = members_at_risk
    login(client, "marketer")
    html = client.get("/staff/analytics/members/?kind=high-risk").content.decode()
    assert ours.member_no in html and theirs.member_no in html and calm.member_no not in html
    assert "138****1234" in html and "+8613812341234" not in html
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get("/staff/analytics/members/csv/?kind=high-risk")
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == [
        "Member number",
        "Name",
        "Mobile phone",
        "Tier",
        "Last purchase",
        "Churn probability",
        "Churn risk",
    ]
    assert rows[1][0] == theirs.member_no  # the likeliest to churn first
    assert rows[2] == [
        ours.member_no,
        "'=SUM(A1)",
        "138****1234",
        "",
        "2025-12-01",
        "0.8123",
        "High risk",
    ]


def test_a_manager_sees_only_their_stores_members(client, stores, members_at_risk):
    ours, theirs, _calm = members_at_risk
    login(client, "store_manager", stores=[stores[0]])
    html = client.get("/staff/analytics/members/?kind=high-risk").content.decode()
    assert ours.member_no in html and theirs.member_no not in html
    body = b"".join(client.get("/staff/analytics/members/csv/?kind=high-risk").streaming_content)
    assert ours.member_no.encode() in body and theirs.member_no.encode() not in body


@override_settings(ANALYTICS_SILENT_DAYS=180)
def test_the_members_who_churned_in_a_month(client, stores):
    login(client, "marketer")
    a = stores[0]
    # Last purchase 2025-09-01 (Shanghai): 181 days later is 2026-03-01, churned in March.
    march = MemberFactory()
    _figures(
        march,
        store=a.pk,
        band="high",
        probability=0.9,
        stage="churned",
        last=datetime.datetime(2025, 9, 1, 23, 30, tzinfo=SHANGHAI),
    )
    february = MemberFactory()
    _figures(
        february,
        store=a.pk,
        band="high",
        probability=0.9,
        stage="churned",
        last=datetime.datetime(2025, 8, 31, 23, 30, tzinfo=SHANGHAI),
    )
    html = client.get("/staff/analytics/members/?kind=churned&month=2026-03").content.decode()
    assert march.member_no in html and february.member_no not in html


@pytest.mark.parametrize("query", ["kind=nope", "kind=churned", "kind=churned&month=2026-13"])
def test_a_bad_members_link_is_not_found(client, query):
    login(client, "marketer")
    assert client.get(f"/staff/analytics/members/?{query}").status_code == 404
