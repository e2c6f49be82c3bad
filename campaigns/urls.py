"""Campaign URLs: `staff_patterns` join the staff namespace at /staff/, `portal_patterns` the
portal's at / (loyalty_site/urls.py)."""

from __future__ import annotations

from django.urls import path

from . import segment_views

staff_patterns: list = [
    path("segments/", segment_views.segment_list_view, name="segments"),
    path("segments/new/", segment_views.segment_new_view, name="segment-new"),
    path("segments/preview/", segment_views.segment_preview_view, name="segment-preview"),
    path("segments/count.json", segment_views.segment_count_json_view, name="segment-count-json"),
    path("segments/<int:pk>/", segment_views.segment_detail_view, name="segment-detail"),
    path("segments/<int:pk>/count/", segment_views.segment_count_view, name="segment-count"),
    path("segments/<int:pk>/archive/", segment_views.segment_archive_view, name="segment-archive"),
    path("segments/<int:pk>/export.csv", segment_views.segment_export_view, name="segment-export"),
]
portal_patterns: list = []
