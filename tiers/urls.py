"""Tier URLs: `portal_patterns` join the portal at /, `staff_patterns` the back office."""

from __future__ import annotations

from django.urls import path, re_path

from members.urls import MEMBER_NO

from . import views

portal_patterns = [path("tiers/", views.portal_tiers, name="tiers")]

staff_patterns = [
    re_path(rf"^members/{MEMBER_NO}/tier/$", views.tier_override_view, name="tier-override"),
]
