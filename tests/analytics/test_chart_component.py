"""The chart include: the option travels as JSON data, the table view and CSV link with it."""

from __future__ import annotations

import json
import re

from django.template.loader import render_to_string


def _render(**context) -> str:
    return render_to_string("analytics/_chart.html", context)


def test_the_option_is_json_data_the_script_finds_by_the_charts_attribute():
    option = {"series": [{"type": "bar", "data": [1, 2]}], "title": {"text": "</script><b>"}}
    html = _render(
        chart_id="members",
        title="Members",
        option=option,
        table={"headers": ["Month", "Members"], "rows": [["2026-01", 5]]},
        csv_url="/staff/analytics/panel/members/csv/",
    )
    assert 'data-chart-option="members-option"' in html
    source = re.search(r'<script id="members-option" type="application/json">(.*?)</script>', html)
    assert source is not None
    # json_script escapes <, > and &, so a title cannot end the script element early.
    assert json.loads(source.group(1)) == option


def test_the_table_view_labels_every_cell_and_the_csv_link_is_there():
    html = _render(
        chart_id="points",
        title="Points",
        option={},
        table={"headers": ["Month", "Issued", "Redeemed"], "rows": [["2026-02", 120, None]]},
        csv_url="/points.csv",
    )
    assert "<details" in html and "<caption" in html
    assert '<th scope="row">2026-02</th>' in html
    assert '<td data-label="Issued">120</td>' in html
    assert '<td data-label="Redeemed">—</td>' in html
    assert 'href="/points.csv"' in html


def test_no_csv_link_without_a_url():
    html = _render(chart_id="x", title="X", option={}, table={"headers": [], "rows": []})
    assert "csv-link" not in html
