"""The Django admin with the back office's log-in rules (see loyalty_site.admin)."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class LoyaltyAdminConfig(AdminConfig):
    default_site = "loyalty_site.admin.LoyaltyAdminSite"
