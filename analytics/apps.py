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
        self._register_staff_panels()

    def _register_staff_panels(self) -> None:
        from core.panels import staff_member_panel_register

        from .staff_views import member_figures_panel

        # After the points panels (10–50): who the member is as a customer, once the
        # balance and what explains it have been read.
        staff_member_panel_register(
            name="analytics-figures",
            order=60,
            template="analytics/staff/_panel_figures.html",
            context=member_figures_panel,
        )
