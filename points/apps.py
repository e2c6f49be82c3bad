from __future__ import annotations

from dataclasses import replace

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "points"
    verbose_name = _("Points")

    def ready(self) -> None:
        from members.selectors import PointsSummary, member_summary_contributor_register

        from .selectors import points_balance

        def points_part(member, summary):
            balance = points_balance(member=member)
            return replace(
                summary, points=PointsSummary(available=balance.available, pending=balance.pending)
            )

        member_summary_contributor_register(points_part)
