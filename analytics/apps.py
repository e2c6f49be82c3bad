from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
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
