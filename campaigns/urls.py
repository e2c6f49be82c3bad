"""Campaign URLs: `staff_patterns` join the staff namespace at /staff/, `portal_patterns` the
portal's at / (loyalty_site/urls.py)."""

from __future__ import annotations

from django.urls import path

from . import message_views, result_views, segment_views, staff_views

staff_patterns: list = [
    path("segments/", segment_views.segment_list_view, name="segments"),
    path("segments/new/", segment_views.segment_new_view, name="segment-new"),
    path("segments/preview/", segment_views.segment_preview_view, name="segment-preview"),
    path("segments/count.json", segment_views.segment_count_json_view, name="segment-count-json"),
    path("segments/<int:pk>/", segment_views.segment_detail_view, name="segment-detail"),
    path("segments/<int:pk>/count/", segment_views.segment_count_view, name="segment-count"),
    path("segments/<int:pk>/archive/", segment_views.segment_archive_view, name="segment-archive"),
    path("segments/<int:pk>/export.csv", segment_views.segment_export_view, name="segment-export"),
    path("campaigns/", staff_views.campaign_list_view, name="campaign-list"),
    path("campaigns/new/", staff_views.campaign_new_view, name="campaign-new"),
    path("campaigns/win-back/", staff_views.campaign_winback_view, name="campaign-winback"),
    path("campaigns/<int:campaign_id>/", staff_views.campaign_detail_view, name="campaign-detail"),
    path("campaigns/<int:campaign_id>/edit/", staff_views.campaign_edit_view, name="campaign-edit"),
    path(
        "campaigns/<int:campaign_id>/launch/",
        staff_views.campaign_launch_view,
        name="campaign-launch",
    ),
    path(
        "campaigns/<int:campaign_id>/approve/",
        staff_views.campaign_approve_view,
        name="campaign-approve",
    ),
    path(
        "campaigns/<int:campaign_id>/cancel/",
        staff_views.campaign_cancel_view,
        name="campaign-cancel",
    ),
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
portal_patterns: list = [
    path("notices/", message_views.notices, name="notices"),
    path("notices/<int:message_id>/", message_views.notice_detail, name="notice-detail"),
    path("unsubscribe/<str:token>/", message_views.unsubscribe, name="unsubscribe"),
]
