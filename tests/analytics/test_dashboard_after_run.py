"""After a real nightly analytics run, every panel shows exactly the rows the job wrote."""

from __future__ import annotations

import datetime

import pytest

from analytics import metrics as m
from analytics.charts import PANELS, panel_build
from analytics.models import Rollup
from analytics.selectors import Scope
from analytics.services import analytics_rollup
from tests.analytics.conftest import login
from tests.factories import StoreFactory

from .dashboard_history import dashboard_history

AS_OF = datetime.date(2026, 3, 31)
SCOPE = Scope(start=datetime.date(2025, 4, 1), end=datetime.date(2026, 3, 1))


@pytest.fixture
def run(db):
    stores = StoreFactory(code="X01"), StoreFactory(code="Y01")
    dashboard_history(stores=stores)
    analytics_rollup(business_date=AS_OF)
    return stores


def _value(metric: str, period: datetime.date, *, store: int = 0, dim: str = "") -> int:
    """The job's row, 0 where it wrote none (it leaves out zero figures)."""
    row = Rollup.objects.filter(
        metric=metric, period=period, store_key=store, tier_key=0, dim=dim
    ).first()
    return 0 if row is None else int(row.value)


def test_the_monthly_panels_show_the_rows(run):
    members = {row[0]: row[1:] for row in panel_build(name="members", scope=SCOPE).table.rows}
    march = datetime.date(2026, 3, 1)
    assert members["2026-03"] == [
        _value(m.MEMBERS_TOTAL, march),
        _value(m.MEMBERS_NEW, march),
        _value(m.MEMBERS_ACTIVE, march),
    ]
    assert members["2026-03"] == [4, 0, 2]  # a and c bought in March
    points = {row[0]: row[1:] for row in panel_build(name="points", scope=SCOPE).table.rows}
    assert points["2026-03"][0] == _value(m.POINTS_ISSUED, march)
    revenue = {row[0]: row[1:] for row in panel_build(name="revenue", scope=SCOPE).table.rows}
    february = datetime.date(2026, 2, 1)
    orders, gross, returns, net, _aov = revenue["2026-02"]
    assert (orders, gross, returns) == (
        _value(m.ORDERS, february),
        _value(m.REVENUE, february),
        _value(m.RETURNS, february),
    )
    assert net == gross - returns


def test_the_snapshot_panels_read_the_runs_day(run):
    stages = panel_build(name="stages", scope=SCOPE)
    assert stages.as_of == AS_OF
    assert sum(row[1] for row in stages.table.rows) == 4


def test_every_panel_renders_after_a_run(run, client):
    login(client, "marketer")
    page = client.get("/staff/analytics/").content.decode()
    assert "2026-03-31" in page
    empty = []
    for name in PANELS:
        response = client.get(f"/staff/analytics/panel/{name}/", HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        if "panel-empty" in response.content.decode():
            empty.append(name)
    # The churn snapshots are the churn job's (03:00), not this one's.
    assert empty == ["churn"]


def test_a_store_filter_reads_that_stores_rows(run, client):
    x, _y = run
    login(client, "store_manager", stores=[x])
    html = client.get("/staff/analytics/panel/members/", HTTP_HX_REQUEST="true").content.decode()
    total = _value(m.MEMBERS_TOTAL, datetime.date(2026, 3, 1), store=x.pk)
    row = html[html.index('<th scope="row">2026-03</th>') :].split("</tr>")[0]
    assert f">{total}</td>" in row
