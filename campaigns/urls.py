"""Campaign URLs: `staff_patterns` join the staff namespace at /staff/, `portal_patterns` the
portal's at / (loyalty_site/urls.py)."""

from __future__ import annotations

from django.urls import path

from . import result_views

staff_patterns: list = [
    path(
        "campaigns/<int:pk>/results/",
        result_views.campaign_results_view,
        name="campaign-results",
    ),
    path(
        "campaigns/<int:pk>/results/refresh/",
        result_views.campaign_results_refresh_view,
        name="campaign-results-refresh",
    ),
    path(
        "campaigns/<int:pk>/results.csv",
        result_views.campaign_results_csv_view,
        name="campaign-results-csv",
    ),
]
portal_patterns: list = []
