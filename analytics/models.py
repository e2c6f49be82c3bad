"""What marketers read, computed at night so no page view scans purchases or the ledger.

- `MemberFigures`: one narrow row per member (recency, frequency, spend, RFM, lifecycle,
  churn score). The nightly analytics job rewrites it set-based; a posted purchase moves
  its member's last purchase at once (analytics.services.member_figures_purchase_record).
- `Rollup`: the dashboards' figures in long form, one row per (metric, period, store,
  tier, dimension). `store_key` / `tier_key` 0 mean "all stores" / "all tiers", so a
  member who bought at two stores counts once in the all-stores row (distinct counts are
  not additive). The nightly job replaces every row in one transaction; the metric names
  and what each row means are in analytics/metrics.py.
- `ChurnModel`: every trained churn model with its model card; the newest one trained on
  or before a date scores as of that date.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member


class Stage(models.TextChoices):
    NEW = "new", _("New")
    ACTIVE = "active", _("Active")
    SILENT = "silent", _("Silent")
    CHURNED = "churned", _("Churned")
    NEVER = "never", _("Never purchased")


class RiskBand(models.TextChoices):
    HIGH = "high", _("High risk")
    MEDIUM = "medium", _("Medium risk")
    LOW = "low", _("Low risk")


class MemberFigures(models.Model):
    member = models.OneToOneField(
        Member,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="figures",
        verbose_name=_("member"),
    )
    # The business day (Asia/Shanghai) the windows below end on.
    as_of = models.DateField(_("as of"))
    # The member's store for the dashboards: home store, else the enrolment store; -1 for a
    # member of no store (online sign-up), who counts in "all stores" only.
    store_key = models.IntegerField(_("store"), default=0)
    tier_key = models.IntegerField(_("tier"), default=0)
    first_purchase_at = models.DateTimeField(_("first purchase"), null=True, blank=True)
    last_purchase_at = models.DateTimeField(_("last purchase"), null=True, blank=True)
    orders_30 = models.IntegerField(_("orders, 30 days"), default=0)
    orders_90 = models.IntegerField(_("orders, 90 days"), default=0)
    orders_365 = models.IntegerField(_("orders, 365 days"), default=0)
    orders_total = models.IntegerField(_("orders, lifetime"), default=0)
    net_spend_30 = models.DecimalField(
        _("net spend, 30 days (¥)"), max_digits=14, decimal_places=2, default=0
    )
    net_spend_90 = models.DecimalField(
        _("net spend, 90 days (¥)"), max_digits=14, decimal_places=2, default=0
    )
    net_spend_365 = models.DecimalField(
        _("net spend, 365 days (¥)"), max_digits=14, decimal_places=2, default=0
    )
    net_spend_total = models.DecimalField(
        _("net spend, lifetime (¥)"), max_digits=14, decimal_places=2, default=0
    )
    avg_days_between = models.DecimalField(
        _("average days between purchases"),
        max_digits=8,
        decimal_places=1,
        null=True,
        blank=True,
    )
    balance = models.BigIntegerField(_("points balance"), default=0)
    expiring_30 = models.BigIntegerField(_("points expiring in 30 days"), default=0)
    r_score = models.PositiveSmallIntegerField(_("R score"), null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(_("F score"), null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(_("M score"), null=True, blank=True)
    rfm_cell = models.CharField(_("RFM cell"), max_length=20, blank=True)
    stage = models.CharField(_("lifecycle stage"), max_length=10, choices=Stage.choices)
    churn_probability = models.FloatField(_("churn probability"), null=True, blank=True)
    churn_band = models.CharField(
        _("churn risk"), max_length=10, choices=RiskBand.choices, blank=True
    )
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("member figures")
        verbose_name_plural = _("member figures")
        constraints = [
            models.CheckConstraint(
                condition=(
                    (Q(r_score__isnull=True) | Q(r_score__gte=1, r_score__lte=5))
                    & (Q(f_score__isnull=True) | Q(f_score__gte=1, f_score__lte=5))
                    & (Q(m_score__isnull=True) | Q(m_score__gte=1, m_score__lte=5))
                ),
                name="analytics_figures_scores_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(churn_probability__isnull=True)
                | Q(churn_probability__gte=0, churn_probability__lte=1),
                name="analytics_figures_probability_0_to_1",
            ),
        ]
        # No index on the stage: five values, read by whole-table roll-ups, and an index on
        # it would keep the nightly rewrite from being a HOT update (migration 0003).
        indexes = [
            models.Index(fields=["churn_band"], name="analytics_figures_band_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} @ {self.as_of}"


class Rollup(models.Model):
    metric = models.CharField(_("metric"), max_length=40)
    # The first day of the month the figure is for (or the as-of day of a snapshot).
    period = models.DateField(_("period"))
    store_key = models.IntegerField(_("store"), default=0)
    tier_key = models.IntegerField(_("tier"), default=0)
    # A second dimension where the metric has one (cohort month offset, RFM cell, stage...).
    dim = models.CharField(_("dimension"), max_length=40, blank=True, default="")
    value = models.DecimalField(_("value"), max_digits=20, decimal_places=4)

    class Meta:
        verbose_name = _("roll-up figure")
        verbose_name_plural = _("roll-up figures")
        permissions = [("view_dashboard", _("Can read the analytics dashboards"))]
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "store_key", "tier_key", "period", "dim"],
                name="analytics_rollup_one_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.period} s{self.store_key} t{self.tier_key} {self.dim}"


class ChurnModel(models.Model):
    class Kind(models.TextChoices):
        MODEL = "model", _("Trained model")
        RECENCY_RULE = "recency_rule", _("Recency rule")

    # Trained on data on or before this business day (Asia/Shanghai).
    as_of = models.DateField(_("trained as of"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # Why the recency rule stands in, when it does (too little history, model not better).
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    horizon_days = models.PositiveSmallIntegerField(_("horizon (days)"))
    # The model card: metrics for the model and both baselines on the held-out cut-off,
    # the cut-offs used, the calibration curve, feature names.
    card = models.JSONField(_("model card"), default=dict)
    # The pickled, calibrated classifier (empty for the recency rule).
    artifact = models.BinaryField(_("model"), blank=True, default=b"")
    trained_at = models.DateTimeField(_("trained"))

    class Meta:
        verbose_name = _("churn model")
        verbose_name_plural = _("churn models")
        ordering = ["-as_of", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["as_of"], name="analytics_churn_model_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.as_of}"
