"""The Django admin for tiers: administrators configure the ladder and the policy. Tier
status and history are written by the services only, so they are read-only here; a member's
tier is set by hand on the back-office member page (audited), not in the admin."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from members.admin import AdministratorAdmin, ReadOnlyAdmin

from .models import MemberTier, TierHistory, TierLevel, TierPolicy


@admin.register(TierLevel)
class TierLevelAdmin(AdministratorAdmin):
    list_display = (
        "rank",
        "code",
        "name_zh",
        "name_en",
        "qualify_spend",
        "qualify_points",
        "retain_spend",
        "retain_points",
        "earn_multiplier",
        "discount_rate",
        "birthday_coupon",
        "updated_at",
    )
    ordering = ("rank",)
    fieldsets = (
        (None, {"fields": ("rank", "code", "name_zh", "name_en")}),
        (
            _("Reaching and keeping the level (0 = not by this figure)"),
            {
                "fields": ("qualify_spend", "qualify_points", "retain_spend", "retain_points"),
                "description": _(
                    "Changes apply from the next nightly run: members who now qualify are "
                    "upgraded then; members already on the level keep it until their "
                    "anniversary, where the new retention figures decide."
                ),
            },
        ),
        (
            _("Benefits"),
            {
                "fields": (
                    "earn_multiplier",
                    "discount_rate",
                    "birthday_coupon",
                    "benefits_zh",
                    "benefits_en",
                )
            },
        ),
    )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Members and their history point at levels; a level is renamed, never removed.
        return False


@admin.register(TierPolicy)
class TierPolicyAdmin(AdministratorAdmin):
    list_display = ("__str__", "downgrade", "valid_months", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not TierPolicy.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(MemberTier)
class MemberTierAdmin(ReadOnlyAdmin):
    list_display = ("member", "level", "achieved_at", "valid_until", "override_until")
    list_filter = ("level",)
    search_fields = ("member__member_no",)
    list_select_related = ("member", "level")


@admin.register(TierHistory)
class TierHistoryAdmin(ReadOnlyAdmin):
    list_display = ("member", "from_level", "to_level", "reason", "at", "valid_until", "actor")
    list_filter = ("reason", "to_level")
    search_fields = ("member__member_no",)
    list_select_related = ("member", "from_level", "to_level", "actor")
    date_hierarchy = "at"
