"""Campaign URLs: `staff_patterns` join the staff namespace at /staff/, `portal_patterns` the
portal's at / (loyalty_site/urls.py)."""

from __future__ import annotations

from django.urls import path

from . import message_views

staff_patterns: list = []
portal_patterns: list = [
    path("notices/", message_views.notices, name="notices"),
    path("notices/<int:message_id>/", message_views.notice_detail, name="notice-detail"),
    path("unsubscribe/<str:token>/", message_views.unsubscribe, name="unsubscribe"),
]
