"""Campaign results: what a campaign earned, measured against its holdout (ANALYTICS.md).

Intention to treat over the audience frozen at launch (`CampaignMember`, both arms), whether
or not anything reached a treated member. The window is [launched_at, launched_at + W) with
W the campaign's conversion window, clipped at `now` while it is still open (the figures say
so). Per arm: members, conversions (members with at least one purchase in the window),
revenue per member (purchases minus returns made in the window, members without either
counted as 0, each member's figure capped at the campaign's revenue-cap percentile of the
pooled members) and orders per member.

The database adds up each member's purchases and returns in one statement (only members
who bought or returned come back; the others are zeros counted per arm); the statistics are
numpy and campaigns/stats.py. The cost adds what the campaign actually spent: its ledger
postings (keys `campaign:<id>:…`) valued at ANALYTICS_POINT_VALUE × CAMPAIGN_EXPECTED_REDEMPTION,
the face value of its coupons that were used, and the SMS and e-mails sent.

The pre-launch figures (cost estimate, approval threshold, baseline rate for the minimum
detectable effect) live here too: the estimate and the measured cost value points, coupons
and messages the same way.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, Sum
from django.utils.dateparse import parse_datetime

from analytics.models import MemberFigures
from members.models import Member
from points.earning import policy_get
from points.models import Coupon, LedgerTransaction, Purchase, Return, Reward

from . import stats
from .models import Campaign, CampaignMember, CampaignResult, OutboxMessage

MONEY = Decimal("0.01")
TREATMENT = CampaignMember.Arm.TREATMENT
CONTROL = CampaignMember.Arm.CONTROL

# Why a figure is missing or what to keep in mind, as codes in the stored JSON; the page
# words them (campaigns/result_views.py) in the reader's language.
NOTE_WINDOW_OPEN = "window_open"
NOTE_NOT_LAUNCHED = "not_launched"
NOTE_NO_CONTROL = "no_control"
NOTE_NO_TREATMENT = "no_treatment"
NOTE_FEW_CONVERSIONS = "few_conversions"
NOTE_NO_BASELINE = "no_baseline"
NOTE_NO_VARIANCE = "no_variance"
NOTE_SRM = "sample_ratio_mismatch"
NOTE_NOT_CAPPED = "revenue_not_capped"
NOTE_MULTIPLIER_POINTS = "multiplier_points"
NOTE_STORES = "stores"


def campaign_key_prefix(campaign_id: int) -> str:
    """The start of every ledger key a campaign posts (`campaign:<id>:member:<id>`)."""
    return f"campaign:{campaign_id}:"


def coupon_face_value(reward: Reward) -> Decimal:
    """What one used coupon of `reward` cost the business, in yuan.

    The amount off for amount-off and spend-X-save-Y coupons; for the rest (percent off,
    gifts, tickets), whose value depends on the basket, what the catalogue sells it for:
    its points price at ANALYTICS_POINT_VALUE.
    """
    if reward.amount_off:
        return Decimal(reward.amount_off)
    return Decimal(reward.points_price) * settings.ANALYTICS_POINT_VALUE


def points_cost(points: int | Decimal) -> Decimal:
    """The yuan cost of points issued: what they pay at the till when redeemed."""
    return (Decimal(points) * settings.ANALYTICS_POINT_VALUE).quantize(MONEY)


def message_cost(*, sms: int, emails: int) -> Decimal:
    return (
        sms * settings.CAMPAIGN_SMS_UNIT_PRICE + emails * settings.CAMPAIGN_EMAIL_UNIT_PRICE
    ).quantize(MONEY)


# --- The figures ------------------------------------------------------------------------------


@dataclass
class ArmFigures:
    members: int = 0
    conversions: int = 0
    conversion_rate: float | None = None
    # Capped at the revenue cap; variances are sample variances (n − 1).
    revenue_per_member: float | None = None
    revenue_variance: float | None = None
    revenue_total: float = 0.0
    orders: int = 0
    orders_per_member: float | None = None
    orders_variance: float | None = None


@dataclass
class Uplift:
    """A difference between the arms with its 95 % interval (None where not computable)."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    method: str = ""
    df: float | None = None

    @classmethod
    def of(
        cls, value: float | None, interval: stats.Interval | None, df: float | None = None
    ) -> Uplift:
        if interval is None:
            return cls(value=value, df=df)
        return cls(value, interval.low, interval.high, interval.method, df)


@dataclass
class CostFigures:
    points_issued: int = 0
    # Points × ANALYTICS_POINT_VALUE × CAMPAIGN_EXPECTED_REDEMPTION.
    points_cost: Decimal = Decimal(0)
    coupons_used: int = 0
    coupons_face_value: Decimal = Decimal(0)
    sms_sent: int = 0
    emails_sent: int = 0
    messages_cost: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.points_cost + self.coupons_face_value + self.messages_cost


UPLIFTS = ("conversion_uplift", "revenue_uplift", "relative_revenue_uplift", "orders_uplift")


@dataclass
class CampaignResultFigures:
    campaign_id: int
    computed_at: datetime.datetime
    window_start: datetime.datetime | None
    # Where the figures stop: the window's end, or `computed_at` while it is open.
    window_end: datetime.datetime | None
    window_closes: datetime.datetime | None
    window_days: int
    # None: every store; else the home stores of the members counted.
    store_ids: list[int] | None
    holdout_share: float
    treatment: ArmFigures = field(default_factory=ArmFigures)
    control: ArmFigures = field(default_factory=ArmFigures)
    conversion_uplift: Uplift = field(default_factory=Uplift)
    revenue_uplift: Uplift = field(default_factory=Uplift)
    relative_revenue_uplift: Uplift = field(default_factory=Uplift)
    orders_uplift: Uplift = field(default_factory=Uplift)
    sample_ratio_p: float | None = None
    revenue_cap_percentile: float = 99.9
    # The yuan figure each member's revenue was capped at; None when nothing was capped.
    revenue_cap: float | None = None
    members_capped: int = 0
    cost: CostFigures = field(default_factory=CostFigures)
    incremental_revenue: Decimal | None = None
    # Incremental revenue ÷ cost: yuan earned per yuan spent.
    return_on_cost: Decimal | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def window_open(self) -> bool:
        return NOTE_WINDOW_OPEN in self.notes

    @property
    def sample_ratio_warning(self) -> bool:
        return stats.sample_ratio_mismatch(self.sample_ratio_p)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON: dates ISO, money as text (exact), figures as numbers."""
        data = asdict(self)
        for key in ("computed_at", "window_start", "window_end", "window_closes"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        for key in ("incremental_revenue", "return_on_cost"):
            data[key] = None if data[key] is None else str(data[key])
        data["cost"] = {
            key: str(value) if isinstance(value, Decimal) else value
            for key, value in data["cost"].items()
        }
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignResultFigures:
        data = dict(data)
        for key in ("computed_at", "window_start", "window_end", "window_closes"):
            data[key] = parse_datetime(data[key]) if data.get(key) else None
        for key in ("incremental_revenue", "return_on_cost"):
            data[key] = None if data.get(key) is None else Decimal(data[key])
        data["treatment"] = ArmFigures(**data["treatment"])
        data["control"] = ArmFigures(**data["control"])
        for key in UPLIFTS:
            data[key] = Uplift(**data[key])
        cost = dict(data["cost"])
        for key in ("points_cost", "coupons_face_value", "messages_cost"):
            cost[key] = Decimal(cost[key])
        data["cost"] = CostFigures(**cost)
        return cls(**data)


# --- Computing them ---------------------------------------------------------------------------


def campaign_window(
    *, campaign: Campaign, now: datetime.datetime
) -> tuple[datetime.datetime, datetime.datetime, datetime.datetime] | None:
    """(start, end, closes): the conversion window [launched_at, launched_at + W), its end
    clipped at `now` while open; None before launch."""
    if campaign.launched_at is None:
        return None
    start = campaign.launched_at
    closes = start + datetime.timedelta(days=campaign.conversion_window_days)
    end = max(start, min(closes, now))
    return start, end, closes


def _audience_sql(
    *, campaign: Campaign, store_ids: Collection[int] | None
) -> tuple[str, str, list[Any]]:
    """(FROM, WHERE, params) of the audience rows (alias cm) counted: the campaign's members,
    of those home stores when given."""
    audience = CampaignMember._meta.db_table
    if store_ids is None:
        return f"{audience} cm", "cm.campaign_id = %s", [campaign.pk]
    members = Member._meta.db_table
    marks = ", ".join(["%s"] * len(store_ids))
    return (
        f"{audience} cm JOIN {members} m ON m.id = cm.member_id",
        f"cm.campaign_id = %s AND m.home_store_id IN ({marks})",
        [campaign.pk, *store_ids],
    )


def _arm_sizes(*, audience: tuple[str, str, list[Any]]) -> dict[str, int]:
    from_sql, where_sql, params = audience
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT cm.arm, COUNT(*) FROM {from_sql} WHERE {where_sql} GROUP BY cm.arm",  # noqa: S608
            params,
        )
        return {arm: count for arm, count in cursor.fetchall()}


def _member_activity(
    *, audience: tuple[str, str, list[Any]], start: datetime.datetime, end: datetime.datetime
) -> list[tuple[str, int, float]]:
    """(arm, orders, net revenue) of every counted member who bought or returned in the
    window, in one statement. A return counts when it is made in the window, whenever its
    purchase was; an order counts as a conversion even if returned later."""
    from_sql, where_sql, params = audience
    purchases = Purchase._meta.db_table
    returns = Return._meta.db_table
    query = (
        "SELECT cm.arm, SUM(e.orders), CAST(SUM(e.amount) AS DOUBLE PRECISION) "  # noqa: S608
        f"FROM {from_sql} JOIN ("
        f"SELECT p.member_id, 1 AS orders, p.amount AS amount FROM {purchases} p "
        "WHERE p.occurred_at >= %s AND p.occurred_at < %s "
        "UNION ALL "
        f"SELECT p.member_id, 0 AS orders, -r.amount AS amount FROM {returns} r "
        f"JOIN {purchases} p ON p.id = r.purchase_id "
        "WHERE r.occurred_at >= %s AND r.occurred_at < %s"
        f") e ON e.member_id = cm.member_id WHERE {where_sql} "
        "GROUP BY cm.member_id, cm.arm"
    )
    start, end = _db_time(start), _db_time(end)
    with connection.cursor() as cursor:
        cursor.execute(query, [start, end, start, end, *params])
        return [(arm, int(orders), float(amount or 0)) for arm, orders, amount in cursor]


def _db_time(value: datetime.datetime) -> Any:
    """A time as the database compares it in raw SQL (SQLite keeps UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def _arm_figures(*, members: int, orders: np.ndarray, revenue: np.ndarray) -> ArmFigures:
    """An arm's figures from its buyers' arrays, the other members counting as zeros."""
    figures = ArmFigures(members=members)
    if members == 0:
        return figures
    zeros = members - len(orders)
    orders_all = np.concatenate([orders, np.zeros(zeros)])
    revenue_all = np.concatenate([revenue, np.zeros(zeros)])
    figures.conversions = int(np.count_nonzero(orders > 0))
    figures.conversion_rate = figures.conversions / members
    figures.orders = int(orders.sum())
    figures.orders_per_member = float(orders_all.mean())
    figures.revenue_total = round(float(revenue_all.sum()), 2)
    figures.revenue_per_member = float(revenue_all.mean())
    if members > 1:
        figures.orders_variance = float(orders_all.var(ddof=1))
        figures.revenue_variance = float(revenue_all.var(ddof=1))
    return figures


def _revenue_cap(*, revenue: np.ndarray, members: int, percentile: float) -> float | None:
    """The cap: the `percentile` of every counted member's revenue, zeros included; None
    when it would cap nothing above zero (most members bought nothing)."""
    if members == 0 or len(revenue) == 0:
        return None
    everyone = np.concatenate([revenue, np.zeros(members - len(revenue))])
    cap = float(np.percentile(everyone, percentile))
    return cap if cap > 0 else None


def _cost(*, campaign: Campaign, store_ids: Collection[int] | None) -> CostFigures:
    audience = CampaignMember.objects.filter(campaign=campaign)
    if store_ids is not None:
        audience = audience.filter(member__home_store_id__in=store_ids)
    points = (
        LedgerTransaction.objects.filter(
            member_id__in=audience.values("member_id"),
            idempotency_key__startswith=campaign_key_prefix(campaign.pk),
        ).aggregate(points=Sum("member_amount"))["points"]
        or 0
    )
    used = (
        Coupon.objects.filter(
            pk__in=audience.filter(coupon__isnull=False).values("coupon_id"),
            source=Coupon.Source.CAMPAIGN,
            status=Coupon.Status.USED,
        )
        .values("reward_id")
        .annotate(used=Count("id"))
    )
    by_reward = {row["reward_id"]: row["used"] for row in used}
    rewards = Reward.objects.in_bulk(list(by_reward))
    face_value = sum(
        (coupon_face_value(rewards[pk]) * count for pk, count in by_reward.items()), Decimal(0)
    )
    messages = OutboxMessage.objects.filter(
        campaign=campaign,
        status=OutboxMessage.Status.SENT,
        channel__in=(OutboxMessage.Channel.SMS, OutboxMessage.Channel.EMAIL),
    )
    if store_ids is not None:
        messages = messages.filter(member__home_store_id__in=store_ids)
    sent = dict(messages.values_list("channel").annotate(sent=Count("id")).order_by())
    sms = sent.get(OutboxMessage.Channel.SMS, 0)
    emails = sent.get(OutboxMessage.Channel.EMAIL, 0)
    redemption = Decimal(str(settings.CAMPAIGN_EXPECTED_REDEMPTION))
    return CostFigures(
        points_issued=int(points),
        points_cost=(points_cost(points) * redemption).quantize(MONEY),
        coupons_used=sum(by_reward.values()),
        coupons_face_value=face_value.quantize(MONEY),
        sms_sent=sms,
        emails_sent=emails,
        messages_cost=message_cost(sms=sms, emails=emails),
    )


def campaign_results_compute(
    *,
    campaign: Campaign,
    now: datetime.datetime,
    store_ids: Collection[int] | None = None,
) -> CampaignResultFigures:
    """The campaign's results up to `now`; `store_ids` counts only the audience members
    whose home store is one of them (a store's staff see their own members' results)."""
    stores = sorted(store_ids) if store_ids is not None else None
    figures = CampaignResultFigures(
        campaign_id=campaign.pk,
        computed_at=now,
        window_start=None,
        window_end=None,
        window_closes=None,
        window_days=campaign.conversion_window_days,
        store_ids=stores,
        holdout_share=float(campaign.holdout_percent) / 100,
        revenue_cap_percentile=float(campaign.revenue_cap_percentile),
    )
    if stores is not None:
        figures.notes.append(NOTE_STORES)
    window = campaign_window(campaign=campaign, now=now)
    if window is None:
        figures.notes.append(NOTE_NOT_LAUNCHED)
        return figures
    figures.window_start, figures.window_end, figures.window_closes = window
    if figures.window_end < figures.window_closes:
        figures.notes.append(NOTE_WINDOW_OPEN)
    if stores == []:
        return figures

    audience = _audience_sql(campaign=campaign, store_ids=stores)
    sizes = _arm_sizes(audience=audience)
    rows = _member_activity(audience=audience, start=window[0], end=window[1])
    arms = np.array([arm == TREATMENT for arm, _orders, _revenue in rows], dtype=bool)
    orders = np.array([row[1] for row in rows], dtype=float)
    revenue = np.array([row[2] for row in rows], dtype=float)
    n_t, n_c = sizes.get(TREATMENT, 0), sizes.get(CONTROL, 0)

    cap = _revenue_cap(
        revenue=revenue, members=n_t + n_c, percentile=figures.revenue_cap_percentile
    )
    if cap is not None:
        figures.revenue_cap = round(cap, 2)
        figures.members_capped = int(np.count_nonzero(revenue > cap))
        revenue = np.minimum(revenue, cap)
    elif len(revenue):
        figures.notes.append(NOTE_NOT_CAPPED)

    t = figures.treatment = _arm_figures(members=n_t, orders=orders[arms], revenue=revenue[arms])
    c = figures.control = _arm_figures(members=n_c, orders=orders[~arms], revenue=revenue[~arms])
    _uplifts(figures, t, c)
    figures.sample_ratio_p = stats.sample_ratio_p_value(
        n_t=n_t, n_c=n_c, holdout_share=figures.holdout_share
    )
    if figures.sample_ratio_warning:
        figures.notes.append(NOTE_SRM)

    figures.cost = _cost(campaign=campaign, store_ids=stores)
    if campaign.kind == Campaign.Kind.MULTIPLIER:
        figures.notes.append(NOTE_MULTIPLIER_POINTS)
    if figures.revenue_uplift.value is not None:
        figures.incremental_revenue = (Decimal(str(figures.revenue_uplift.value)) * n_t).quantize(
            MONEY
        )
        total = figures.cost.total
        if total > 0:
            figures.return_on_cost = (figures.incremental_revenue / total).quantize(Decimal("0.01"))
    return figures


def _uplifts(figures: CampaignResultFigures, t: ArmFigures, c: ArmFigures) -> None:
    if c.members == 0:
        figures.notes.append(NOTE_NO_CONTROL)
        return
    if t.members == 0:
        figures.notes.append(NOTE_NO_TREATMENT)
        return
    d, interval = stats.proportion_diff(
        x_t=t.conversions, n_t=t.members, x_c=c.conversions, n_c=c.members
    )
    figures.conversion_uplift = Uplift.of(d, interval)
    if interval is not None and interval.method == stats.NEWCOMBE:
        figures.notes.append(NOTE_FEW_CONVERSIONS)
    arms = {"n_t": t.members, "n_c": c.members}
    revenue = {
        "mean_t": t.revenue_per_member or 0.0,
        "var_t": t.revenue_variance or 0.0,
        "mean_c": c.revenue_per_member or 0.0,
        "var_c": c.revenue_variance or 0.0,
        **arms,
    }
    figures.revenue_uplift = Uplift.of(*stats.welch_diff(**revenue))
    if figures.revenue_uplift.low is None:
        figures.notes.append(NOTE_NO_VARIANCE)
    figures.relative_revenue_uplift = Uplift.of(*stats.relative_uplift(**revenue))
    if figures.relative_revenue_uplift.value is None:
        figures.notes.append(NOTE_NO_BASELINE)
    figures.orders_uplift = Uplift.of(
        *stats.welch_diff(
            mean_t=t.orders_per_member or 0.0,
            var_t=t.orders_variance or 0.0,
            mean_c=c.orders_per_member or 0.0,
            var_c=c.orders_variance or 0.0,
            **arms,
        )
    )


def campaign_results_refresh(*, campaign: Campaign, now: datetime.datetime) -> CampaignResult:
    """Compute the all-stores results and store them, replacing the campaign's last ones."""
    figures = campaign_results_compute(campaign=campaign, now=now)
    with transaction.atomic():
        result, _created = CampaignResult.objects.update_or_create(
            campaign=campaign,
            defaults={
                "computed_at": now,
                "window_end": figures.window_end or now,
                "figures": figures.as_json(),
            },
        )
    return result


def campaign_result_figures(*, result: CampaignResult) -> CampaignResultFigures:
    """The stored figures of a result row."""
    return CampaignResultFigures.from_json(result.figures)


def campaigns_due_for_results(*, now: datetime.datetime) -> list[Campaign]:
    """Running and recently completed campaigns: launched, and whose window closed less than
    a day before `now` (after that their figures no longer change) — or whose figures up to
    the window's end were never stored (the job did not run then)."""
    launched = (
        Campaign.objects.filter(
            launched_at__isnull=False,
            launched_at__lte=now,
            status__in=(Campaign.Status.RUNNING, Campaign.Status.COMPLETED),
        )
        .select_related("result")
        .order_by("pk")
    )
    day = datetime.timedelta(days=1)
    due = []
    for campaign in launched:
        closes = campaign.launched_at + datetime.timedelta(days=campaign.conversion_window_days)
        stored = getattr(campaign, "result", None)
        if closes + day > now or stored is None or stored.window_end < min(closes, now):
            due.append(campaign)
    return due


# --- Before launch ------------------------------------------------------------------------------


@dataclass
class CostEstimate:
    treated: int
    points: int
    points_cost: Decimal
    coupons: int
    coupon_face_value: Decimal
    sms: int
    emails: int
    messages_cost: Decimal
    # How the points were estimated (a multiplier promotion's are a forecast), or "".
    points_basis: str = ""

    @property
    def total(self) -> Decimal:
        return self.points_cost + self.coupon_face_value + self.messages_cost


POINTS_BASIS_FIXED = "fixed"
POINTS_BASIS_RECENT_SPEND = "recent_spend"
# The spend per member a multiplier forecast starts from: net spend of the last 90 days.
FORECAST_SPEND_DAYS = 90


def campaign_cost_estimate(
    *,
    campaign: Campaign,
    treated: int,
    sms: int,
    emails: int,
    member_ids_sql: tuple[str, list] | None = None,
) -> CostEstimate:
    """What the campaign will cost if every treated member gets it, before launch.

    Points: bonus points × treated. A multiplier promotion's extra points are forecast from
    the audience's recent spend: their average net spend per day over the last 90 days
    (the nightly figures) × the promotion's days × the base rate × (multiplier − 1) ×
    treated — every yuan is assumed to fall in the promotion's stores and categories, so it
    is an upper estimate. The audience is `member_ids_sql` (SQL of member ids, column
    `member_id` or the first) when given, else every member with figures. Coupons: the
    reward's face value × treated. Messages: SMS and e-mails × their unit prices.
    """
    points = 0
    basis = ""
    if campaign.kind == Campaign.Kind.BONUS and campaign.bonus_points:
        points = campaign.bonus_points * treated
        basis = POINTS_BASIS_FIXED
    elif campaign.kind == Campaign.Kind.MULTIPLIER and campaign.multiplier:
        basis = POINTS_BASIS_RECENT_SPEND
        if treated and campaign.starts_at and campaign.ends_at:
            days = Decimal((campaign.ends_at - campaign.starts_at).total_seconds()) / 86400
            per_day = _average_spend(member_ids_sql=member_ids_sql) / FORECAST_SPEND_DAYS
            extra = Decimal(campaign.multiplier) - 1
            points = int(per_day * days * policy_get().base_rate * extra * treated)
    coupons = treated if campaign.kind == Campaign.Kind.COUPON and campaign.reward_id else 0
    face = coupon_face_value(campaign.reward) * coupons if coupons else Decimal(0)
    return CostEstimate(
        treated=treated,
        points=points,
        points_cost=points_cost(points),
        coupons=coupons,
        coupon_face_value=face.quantize(MONEY),
        sms=sms,
        emails=emails,
        messages_cost=message_cost(sms=sms, emails=emails),
        points_basis=basis,
    )


def _average_spend(*, member_ids_sql: tuple[str, list] | None) -> Decimal:
    """The average net spend of the last 90 days of those members (every member's when
    None), from the nightly figures."""
    if member_ids_sql is None:
        average = MemberFigures.objects.aggregate(average=Avg("net_spend_90"))["average"]
    else:
        sql, params = member_ids_sql
        table = MemberFigures._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT AVG(net_spend_90) FROM {table} WHERE member_id IN ({sql})",  # noqa: S608
                params,
            )
            average = cursor.fetchone()[0]
    return Decimal(str(average)) if average is not None else Decimal(0)


def campaign_needs_approval(*, estimate: CostEstimate) -> bool:
    """An administrator must approve a campaign whose points cost passes the setting."""
    return estimate.points_cost > settings.CAMPAIGN_APPROVAL_COST


def segment_baseline_rate(
    *, member_ids_sql: tuple[str, list], at: datetime.datetime, window_days: int
) -> float | None:
    """The share of those members (SQL of one column of member ids) who bought anything in
    the `window_days` before `at`: the p̂ of the minimum detectable effect. None for an
    empty segment."""
    sql, params = member_ids_sql
    purchases = Purchase._meta.db_table
    start = at - datetime.timedelta(days=window_days)
    with connection.cursor() as cursor:
        distinct = f"SELECT COUNT(*) FROM (SELECT DISTINCT * FROM ({sql}) ids) audience"  # noqa: S608
        cursor.execute(distinct, params)
        members = cursor.fetchone()[0]
        if not members:
            return None
        cursor.execute(
            f"SELECT COUNT(DISTINCT member_id) FROM {purchases} "  # noqa: S608
            f"WHERE occurred_at >= %s AND occurred_at < %s AND member_id IN ({sql})",
            [_db_time(start), _db_time(at), *params],
        )
        buyers = cursor.fetchone()[0]
    return buyers / members
