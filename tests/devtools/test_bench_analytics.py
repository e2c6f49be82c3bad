"""`bench analytics` prints a line per dashboard panel and times churn training."""

from __future__ import annotations

import datetime
import io
import json

from django.core.management import call_command

from analytics.charts import PANELS
from analytics.services import analytics_rollup
from tests.analytics.history import buy, member


def test_a_line_per_panel_then_the_churn_training(store):
    who = member(enrolled="2026-01-01", store=store)
    buy(who, store=store, day="2026-05-01", amount="120", receipt="BA1")
    analytics_rollup(business_date=datetime.date(2026, 6, 30))
    out = io.StringIO()
    call_command("bench", "analytics", "--samples", "3", "--date", "2026-06-30", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    panels = [line for line in lines if "panel" in line]
    assert [line["panel"] for line in panels] == list(PANELS)
    assert all(line["median_ms"] > 0 and line["store_tier_median_ms"] > 0 for line in panels)
    # Too little history: the recency rule stands in, and the line says so.
    assert lines[-1]["job"] == "churn_train"
    assert lines[-1]["kind"] == "recency_rule"
    assert lines[-1]["seconds"] >= 0
