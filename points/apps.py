from __future__ import annotations

from dataclasses import replace

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "points"
    verbose_name = _("Points")

    def ready(self) -> None:
        from core.config import config_models_register
        from members.selectors import PointsSummary, member_summary_contributor_register

        from .models import CategoryRate, EarningPolicy

        # The earning rules are kept per process (points.earning, core.config).
        config_models_register(EarningPolicy, CategoryRate)

        from members.selectors import member_summary_reads_register

        from .selectors import points_balance, summary_reads

        member_summary_reads_register(name="points", reads=summary_reads())

        def points_part(member, summary):
            balance = points_balance(member=member)
            return replace(
                summary, points=PointsSummary(available=balance.available, pending=balance.pending)
            )

        member_summary_contributor_register(points_part)

        from members.selectors import member_export_contributor_register

        from .selectors import member_points_export

        member_export_contributor_register(member_points_export)

        from core.panels import portal_panel_register

        from .views import portal_balance_panel, portal_expiring_panel

        # The expiring-soon banner sits above the balance: it is the one that needs acting on.
        portal_panel_register(
            name="points-expiring",
            order=10,
            template="points/portal/_panel_expiring.html",
            context=portal_expiring_panel,
        )
        portal_panel_register(
            name="points-balance",
            order=20,
            template="points/portal/_panel_balance.html",
            context=portal_balance_panel,
        )

        self._register_staff_panels()
        self._register_audit_actions()
        self._register_nightly_jobs()
        self._register_member_hooks()
        self._register_imports()

    def _register_imports(self) -> None:
        from core.imports import import_kind_register

        from .imports import BALANCE_IMPORT, PURCHASE_IMPORT

        import_kind_register(PURCHASE_IMPORT)
        import_kind_register(BALANCE_IMPORT)

    def _register_member_hooks(self) -> None:
        from members.hooks import (
            member_enrolled_hook_register,
            member_profile_changed_hook_register,
        )

        from . import rules

        # Sign-up and completed-profile bonuses, posted in the member service's transaction.
        member_enrolled_hook_register(rules.on_member_enrolled)
        member_profile_changed_hook_register(rules.on_member_profile_changed)

    def _register_nightly_jobs(self) -> None:
        from core.jobs import nightly_job_register

        from . import jobs

        # Order of `run_nightly`: tiers evaluate first, reconcile checks last.
        nightly_job_register(
            name="points_expiry",
            order=20,
            function=jobs.expiry_job,
            label=_("Points expiry"),
            figures={"lots_expired": _("Lots expired"), "coupons_expired": _("Coupons expired")},
        )
        nightly_job_register(
            name="expiry_reminders",
            order=30,
            function=jobs.reminders_job,
            label=_("Expiry reminders"),
            figures={"reminders": _("Reminders sent")},
        )
        nightly_job_register(
            name="birthday_benefits",
            order=40,
            function=jobs.birthday_job,
            label=_("Birthday coupons"),
            figures={"coupons": _("Coupons issued"), "notices": _("Notices sent")},
        )
        nightly_job_register(
            name="reconcile",
            order=90,
            function=jobs.reconcile_job,
            label=_("Ledger reconcile"),
            figures={
                "accounts_checked": _("Accounts checked"),
                "mismatches": _("Accounts that do not reconcile"),
                "unbalanced_transactions": _("Transactions that do not sum to zero"),
                "large_postings_threshold": _("Large postings: at least (points)"),
                "large_postings_from": _("Large postings: from"),
                "large_postings_until": _("Large postings: until"),
                "large_postings_count": _("Large postings"),
                "large_postings": _("Large postings listed"),
            },
        )

    def _register_staff_panels(self) -> None:
        from core.panels import staff_member_panel_register

        from . import staff_views

        # The member 360 page in the back office: balance first, then what explains it.
        for order, name, context in (
            (10, "balance", staff_views.balance_panel),
            (20, "purchases", staff_views.purchases_panel),
            (30, "coupons", staff_views.coupons_panel),
            (40, "ledger", staff_views.ledger_panel),
            (50, "lots", staff_views.lots_panel),
        ):
            staff_member_panel_register(
                name=f"points-{name}",
                order=order,
                template=f"points/staff/_panel_{name}.html",
                context=context,
            )

    def _register_audit_actions(self) -> None:
        from members.selectors import audit_action_register

        for action, label in (
            ("purchase.record", _("Purchase recorded")),
            ("purchase.return", _("Return recorded")),
            ("purchase.return_cross_store", _("Return for a purchase at another store")),
            ("points.adjust", _("Points adjusted")),
            ("points.adjust_request", _("Points adjustment sent for approval")),
            ("points.adjust_approve", _("Points adjustment approved and posted")),
            ("points.adjust_reject", _("Points adjustment rejected")),
            ("reward.donate", _("Points donated")),
            ("reward.redeem", _("Reward redeemed")),
            ("reward.void", _("Redemption voided, points refunded")),
            ("coupon.use", _("Coupon used")),
            ("policy.create", _("Earning policy created")),
            ("category.create", _("Category created")),
            ("category_rate.create", _("Category rate created")),
            ("reward.create", _("Reward created")),
            ("member.merge", _("Members merged")),
            ("points.import_purchases", _("Purchases imported from CSV")),
            ("points.import_balances", _("Opening balances imported from CSV")),
        ):
            audit_action_register(action=action, label=label)

        from members.selectors import audit_detail_register

        from .models import PointsAdjustment

        # The details keys of the entries above that members does not already name.
        for key, label in (
            ("adjustment", _("Adjustment")),
            ("limit", _("Limit (points)")),
            ("note", _("Note")),
            ("history", _("Imported as history")),
            ("original_receipt_no", _("Original receipt")),
            ("original_store", _("Original store")),
            ("receipt", _("Receipt")),
            ("requested_by", _("Requested by")),
            ("transaction", _("Ledger transaction")),
        ):
            audit_detail_register(key=key, label=label)
        audit_detail_register(
            key="authority",
            label=_("Authority"),
            choices=dict(PointsAdjustment.Authority.choices),
        )
