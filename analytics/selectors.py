"""Reads for the dashboards: the roll-up rows and the per-member figures, nothing else.

No page view scans purchases or the ledger; the nightly job has already summed them into
`Rollup` (analytics/metrics.py says what every row means) and `MemberFigures`. Store and tier
keys are exact: 0 is the "all stores" / "all tiers" row the job wrote, never a sum of others
(distinct counts do not add up).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Max, QuerySet

from tiers.selectors import add_months, start_of

from . import metrics
from .models import MemberFigures, RiskBand, Rollup, Stage

# The snapshots (period = the as-of day of the run that wrote them).
SNAPSHOT_METRICS = (
    metrics.POINTS_OUTSTANDING,
    metrics.TIER_MEMBERS,
    metrics.STAGE_MEMBERS,
    metrics.RFM_MEMBERS,
    metrics.CHURN_BAND_MEMBERS,
)


@dataclass(frozen=True)
class Scope:
    """What the dashboard's filters chose: months `start`..`end` (first days), one store
    key and one tier key (0 = all)."""

    start: datetime.date
    end: datetime.date
    store_key: int = 0
    tier_key: int = 0

    @property
    def months(self) -> list[datetime.date]:
        months, month = [], self.start
        while month <= self.end:
            months.append(month)
            month = add_months(month, 1)
        return months


def month_of(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def analytics_as_of() -> datetime.date | None:
    """The business day of the last analytics run: the as-of day of the snapshots it wrote."""
    return Rollup.objects.filter(metric__in=SNAPSHOT_METRICS).aggregate(day=Max("period"))["day"]


def _rows(*, metrics: Iterable[str], store_key: int, tier_key: int) -> QuerySet[Rollup]:
    return Rollup.objects.filter(metric__in=list(metrics), store_key=store_key, tier_key=tier_key)


def rollup_monthly(
    *, metrics: Iterable[str], scope: Scope
) -> dict[str, dict[datetime.date, Decimal]]:
    """metric → {month: value} for the months of `scope` (dim "" rows: the totals)."""
    figures: dict[str, dict[datetime.date, Decimal]] = defaultdict(dict)
    rows = _rows(metrics=metrics, store_key=scope.store_key, tier_key=scope.tier_key).filter(
        period__gte=scope.start, period__lte=scope.end, dim=""
    )
    for metric, period, value in rows.values_list("metric", "period", "value"):
        figures[metric][period] = value
    return figures


def rollup_by_dim(
    *,
    metric: str,
    store_key: int,
    tier_key: int,
    start: datetime.date | None = None,
    end: datetime.date | None = None,
) -> dict[datetime.date, dict[str, Decimal]]:
    """month (or as-of day) → {dim: value} for one metric, optionally within start..end."""
    rows = _rows(metrics=[metric], store_key=store_key, tier_key=tier_key)
    if start is not None:
        rows = rows.filter(period__gte=start)
    if end is not None:
        rows = rows.filter(period__lte=end)
    figures: dict[datetime.date, dict[str, Decimal]] = defaultdict(dict)
    for period, dim, value in rows.values_list("period", "dim", "value"):
        figures[period][dim] = value
    return figures


def rollup_snapshot(
    *, metric: str, store_key: int, tier_key: int
) -> tuple[datetime.date | None, dict[str, Decimal]]:
    """The latest snapshot of a metric: (its as-of day, {dim: value}); (None, {}) if none."""
    by_day = rollup_by_dim(metric=metric, store_key=store_key, tier_key=tier_key)
    if not by_day:
        return None, {}
    day = max(by_day)
    return day, by_day[day]


# --- Points liability and breakage ----------------------------------------------------------


@dataclass(frozen=True)
class IssueCohort:
    """The lots earned in one month and what became of them."""

    month: datetime.date
    issued: Decimal
    redeemed: Decimal
    expired: Decimal
    open: Decimal

    @property
    def closed(self) -> bool:
        # Every lot of the month has expired or been spent: its breakage is final.
        return self.open == 0 and self.issued > 0

    @property
    def breakage(self) -> Decimal | None:
        return self.expired / self.issued if self.issued else None


def issue_cohorts(
    *,
    store_key: int,
    tier_key: int,
    start: datetime.date | None = None,
    end: datetime.date | None = None,
) -> list[IssueCohort]:
    """The issue-month cohorts, oldest first."""
    names = (metrics.LOT_ISSUED, metrics.LOT_REDEEMED, metrics.LOT_EXPIRED, metrics.LOT_OPEN)
    rows = _rows(metrics=names, store_key=store_key, tier_key=tier_key).filter(dim="")
    if start is not None:
        rows = rows.filter(period__gte=start)
    if end is not None:
        rows = rows.filter(period__lte=end)
    by_month: dict[datetime.date, dict[str, Decimal]] = defaultdict(dict)
    for metric, period, value in rows.values_list("metric", "period", "value"):
        by_month[period][metric] = value
    zero = Decimal(0)
    return [
        IssueCohort(
            month=month,
            issued=values.get(metrics.LOT_ISSUED, zero),
            redeemed=values.get(metrics.LOT_REDEEMED, zero),
            expired=values.get(metrics.LOT_EXPIRED, zero),
            open=values.get(metrics.LOT_OPEN, zero),
        )
        for month, values in sorted(by_month.items())
    ]


@dataclass(frozen=True)
class Liability:
    as_of: datetime.date | None
    outstanding: Decimal
    point_value: Decimal
    # The share of outstanding points expected never to be spent, and where it comes from:
    # "setting" (ANALYTICS_EXPECTED_BREAKAGE), "closed" (the average of `closed_months`
    # closed issue months) or "none" (neither: no breakage assumed, the full value owed).
    expected_breakage: Decimal
    breakage_source: str
    closed_months: int
    amount: Decimal


def points_liability(*, store_key: int, tier_key: int) -> Liability:
    """Outstanding × value per point × (1 − expected breakage), in ¥ (ANALYTICS.md)."""
    as_of, values = rollup_snapshot(
        metric=metrics.POINTS_OUTSTANDING, store_key=store_key, tier_key=tier_key
    )
    outstanding = values.get("", Decimal(0))
    closed = [
        cohort.breakage
        for cohort in issue_cohorts(store_key=store_key, tier_key=tier_key)
        if cohort.closed
    ]
    if settings.ANALYTICS_EXPECTED_BREAKAGE is not None:
        breakage, source = Decimal(str(settings.ANALYTICS_EXPECTED_BREAKAGE)), "setting"
    elif closed:
        # The plain average of the months' shares: each closed month is one observation of
        # how much of a month's points go unspent, whatever its size.
        breakage, source = sum(closed, Decimal(0)) / len(closed), "closed"
    else:
        breakage, source = Decimal(0), "none"
    point_value = settings.ANALYTICS_POINT_VALUE
    amount = (outstanding * point_value * (1 - breakage)).quantize(Decimal("0.01"))
    return Liability(
        as_of=as_of,
        outstanding=outstanding,
        point_value=point_value,
        expected_breakage=breakage,
        breakage_source=source,
        closed_months=len(closed),
        amount=amount,
    )


# --- Early warning --------------------------------------------------------------------------


@dataclass(frozen=True)
class EarlyWarning:
    as_of: datetime.date | None
    high_risk: int
    scored: int
    churn_month: datetime.date | None
    churned: int
    not_churned_at_start: int

    @property
    def high_risk_share(self) -> float | None:
        return self.high_risk / self.scored if self.scored else None

    @property
    def churn_rate(self) -> float | None:
        return self.churned / self.not_churned_at_start if self.not_churned_at_start else None

    @property
    def high_risk_alert(self) -> bool:
        share = self.high_risk_share
        return share is not None and share > settings.ANALYTICS_ALERT_HIGH_RISK_SHARE

    @property
    def churn_alert(self) -> bool:
        rate = self.churn_rate
        return rate is not None and rate > settings.ANALYTICS_ALERT_CHURN_RATE


def early_warning(*, store_key: int, tier_key: int) -> EarlyWarning:
    """The high-risk share of the latest scores and the churn rate of the latest complete
    month."""
    as_of, bands = rollup_snapshot(
        metric=metrics.CHURN_BAND_MEMBERS, store_key=store_key, tier_key=tier_key
    )
    monthly = _rows(
        metrics=[metrics.CHURNED, metrics.NOT_CHURNED_AT_START],
        store_key=store_key,
        tier_key=tier_key,
    ).filter(dim="")
    # The latest complete month: a month the figures end inside has churn still to come.
    figures_as_of = analytics_as_of()
    if figures_as_of is not None:
        complete = add_months(month_of(figures_as_of + datetime.timedelta(days=1)), -1)
        monthly = monthly.filter(period__lte=complete)
    churn_month = monthly.aggregate(month=Max("period"))["month"]
    churn = dict(monthly.filter(period=churn_month).values_list("metric", "value"))
    return EarlyWarning(
        as_of=as_of,
        high_risk=int(bands.get(RiskBand.HIGH, 0)),
        scored=int(sum(bands.values(), Decimal(0))),
        churn_month=churn_month,
        churned=int(churn.get(metrics.CHURNED, 0)),
        not_churned_at_start=int(churn.get(metrics.NOT_CHURNED_AT_START, 0)),
    )


AT_RISK_HIGH = "high-risk"
AT_RISK_CHURNED = "churned"


def at_risk_members(
    *,
    kind: str,
    store_ids: frozenset[int] | None,
    store_key: int,
    tier_key: int,
    month: datetime.date | None = None,
) -> QuerySet[MemberFigures]:
    """The members behind an alert: those at high risk of churn now, or those who became
    churned in `month` (their last purchase fell ANALYTICS_SILENT_DAYS days before a day of
    that month, and they have not bought since). Only `store_ids` (None: every store)."""
    figures = MemberFigures.objects.select_related("member").order_by(
        "-churn_probability", "member__member_no"
    )
    if store_ids is not None:
        figures = figures.filter(store_key__in=store_ids)
    if store_key:
        figures = figures.filter(store_key=store_key)
    if tier_key:
        figures = figures.filter(tier_key=tier_key)
    if kind == AT_RISK_HIGH:
        return figures.filter(churn_band=RiskBand.HIGH)
    if kind == AT_RISK_CHURNED and month is not None:
        # Churned on the first day more than SILENT days after the last purchase, so the
        # last purchase lies SILENT + 1 days before a day of the month.
        days = datetime.timedelta(days=settings.ANALYTICS_SILENT_DAYS + 1)
        return figures.filter(
            stage=Stage.CHURNED,
            last_purchase_at__gte=start_of(month - days),
            last_purchase_at__lt=start_of(add_months(month, 1) - days),
        ).order_by("-last_purchase_at", "member__member_no")
    return figures.none()
