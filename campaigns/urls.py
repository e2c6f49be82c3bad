"""Campaign URLs: `staff_patterns` join the staff namespace at /staff/, `portal_patterns` the
portal's at / (loyalty_site/urls.py)."""

from __future__ import annotations

from django.urls import path

from . import staff_views

staff_patterns: list = [
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
]
portal_patterns: list = []
