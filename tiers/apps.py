from __future__ import annotations

from dataclasses import replace

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TiersConfig(AppConfig):
    name = "tiers"
    verbose_name = _("Tiers")

    def ready(self) -> None:
        from core.config import config_models_register
        from core.jobs import nightly_job_register
        from core.panels import portal_panel_register, staff_member_panel_register
        from members.selectors import (
            MemberSummaryReads,
            TierSummary,
            audit_action_register,
            audit_detail_register,
            member_export_contributor_register,
            member_summary_contributor_register,
            member_summary_reads_register,
        )

        from . import jobs, views
        from .models import TierLevel, TierPolicy
        from .selectors import member_tier, member_tier_export

        # The ladder and the policy are kept per process (tiers.selectors, core.config).
        config_models_register(TierLevel, TierPolicy)
        # The member's tier row is read with the member for a summary (members.selectors).
        member_summary_reads_register(
            name="tiers", reads=MemberSummaryReads(select_related=("tier_status",))
        )

        def tier_part(member, summary):
            info = member_tier(member=member)
            return replace(
                summary,
                tier=TierSummary(
                    code=info.level.code,
                    name=info.level.name,
                    discount_rate=info.level.discount_rate,
                    valid_until=info.valid_until,
                ),
            )

        member_summary_contributor_register(tier_part)
        member_export_contributor_register(member_tier_export)
        portal_panel_register(
            name="tier",
            order=30,
            template="tiers/portal/_panel_tier.html",
            context=views.portal_tier_panel,
        )
        staff_member_panel_register(
            name="tier",
            order=5,
            template="tiers/staff/_panel_tier.html",
            context=views.staff_tier_panel,
        )
        audit_action_register(action="tier.override", label=_("Tier set by hand"))
        audit_detail_register(key="max_months", label=_("Longest override (months)"))
        # Before points expiry (20): an upgrade decided tonight applies to tomorrow's earning.
        nightly_job_register(
            name="tier_evaluation",
            order=10,
            function=jobs.tier_evaluation_job,
            label=_("Tier evaluation"),
            figures={
                "retained": _("Tiers kept"),
                "downgraded": _("Moved down"),
                "upgraded": _("Moved up"),
                "overrides_ended": _("Tiers set by hand that ended"),
            },
        )
        nightly_job_register(
            name="tier_notices",
            order=35,
            function=jobs.tier_notices_job,
            label=_("Tier notices"),
            figures={"notices": _("Notices sent")},
        )
