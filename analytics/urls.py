"""Analytics URLs: `staff_patterns` join the staff namespace at /staff/ (loyalty_site/urls.py)."""

from __future__ import annotations

from django.urls import path

from . import churn_views, staff_views

staff_patterns = [
    path("analytics/", staff_views.dashboard_view, name="analytics"),
    path("analytics/panel/<slug:name>/", staff_views.panel_view, name="analytics-panel"),
    path(
        "analytics/panel/<slug:name>/csv/",
        staff_views.panel_csv_view,
        name="analytics-panel-csv",
    ),
    path("analytics/members/", staff_views.at_risk_view, name="analytics-at-risk"),
    path("analytics/members/csv/", staff_views.at_risk_csv_view, name="analytics-at-risk-csv"),
    path("analytics/model/", churn_views.churn_model_view, name="analytics-model"),
]
