"""URL wiring: portal at /, back office at /staff/, POS API at /api/v1/, allauth at /accounts/."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from analytics import urls as analytics_urls
from campaigns import urls as campaigns_urls
from core import urls as core_urls
from members import urls as members_urls
from points import urls as points_urls
from tiers import urls as tiers_urls

from . import views
from .api import api

portal_patterns = (
    members_urls.portal_patterns
    + points_urls.portal_patterns
    + tiers_urls.portal_patterns
    + campaigns_urls.portal_patterns
)
staff_patterns = (
    core_urls.staff_patterns
    + members_urls.staff_patterns
    + points_urls.staff_patterns
    + tiers_urls.staff_patterns
    + analytics_urls.staff_patterns
    + campaigns_urls.staff_patterns
)

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    # The admin logs in through allauth, so it shares allauth's rate limits and MFA.
    path(
        "admin/login/",
        RedirectView.as_view(pattern_name="account_login", query_string=True),
        name="admin-login",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include(members_urls.account_patterns)),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", api.urls),
    path("staff/", include((staff_patterns, "staff"))),
    path("", include((portal_patterns, "portal"))),
]
