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

        from .churn.jobs import churn_scoring_job

        # After the analytics job: it writes the MemberFigures rows the scores go into.
        nightly_job_register(
            name="churn_scoring",
            order=60,
            function=churn_scoring_job,
            label=_("Churn scoring"),
            figures={
                "scored": _("Members scored"),
                "figures_updated": _("Member figures updated"),
                "model_as_of": _("Model trained as of"),
                "model_kind": _("Model kind"),
                "retrained": _("Retrained"),
                "high": _("High risk"),
                "medium": _("Medium risk"),
                "low": _("Low risk"),
                "rollup_rows": _("Roll-up figures"),
                "train_seconds": _("Seconds training"),
                "score_seconds": _("Seconds scoring"),
            },
        )

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
