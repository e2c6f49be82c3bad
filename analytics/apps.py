from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from core.jobs import nightly_job_register
        from points.hooks import purchase_posted_hook_register

        from . import jobs
        from .services import member_figures_purchase_record

        # After tiers (the figures carry each member's tier) and expiry (the balances).
        nightly_job_register(
            name="analytics",
            order=50,
            function=jobs.analytics_job,
            label=_("Analytics figures"),
            figures={"members": _("Members"), "rollup_rows": _("Roll-up figures")},
        )
        purchase_posted_hook_register(member_figures_purchase_record)
