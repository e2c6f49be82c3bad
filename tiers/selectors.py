"""Reads for tiers: the ladder, a member's tier, the rolling figures and progress."""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Sum

from core.config import config_cached
from members.models import Member
from members.selectors import member_read_for_summary

from .models import MemberTier, QualifyingActivity, TierHistory, TierLevel, TierPolicy

BUSINESS_TZ = ZoneInfo(settings.TIME_ZONE)
QUALIFYING_MONTHS = 12


def business_date(at: datetime.datetime) -> datetime.date:
    return at.astimezone(BUSINESS_TZ).date()


def start_of(day: datetime.date) -> datetime.datetime:
    """Midnight at the start of a business day, Asia/Shanghai."""
    return datetime.datetime.combine(day, datetime.time(), tzinfo=BUSINESS_TZ)


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day `months` later (or earlier), clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def months_before(at: datetime.datetime, months: int) -> datetime.datetime:
    """The same local wall-clock time `months` earlier."""
    local = at.astimezone(BUSINESS_TZ)
    day = add_months(local.date(), -months)
    return datetime.datetime.combine(day, local.timetz())


def validity_end(*, first_day: datetime.date, months: int) -> datetime.date:
    """The last day of a tier that starts on `first_day` and lasts `months`."""
    return add_months(first_day, months) - datetime.timedelta(days=1)


def override_last_day(*, today: datetime.date) -> datetime.date:
    """The latest end date a manual tier set on `today` may have (TIER_OVERRIDE_MAX_MONTHS)."""
    return add_months(today, settings.TIER_OVERRIDE_MAX_MONTHS)


@config_cached
def tier_policy_get() -> TierPolicy:
    """The tier policy (kept per process: read only)."""
    policy = TierPolicy.objects.order_by("pk").first()
    return policy if policy is not None else TierPolicy()


@config_cached
def _ladder() -> tuple[TierLevel, ...]:
    return tuple(TierLevel.objects.order_by("rank"))


def tier_levels() -> list[TierLevel]:
    """The ladder, lowest rank first (the first is where every member starts). The levels
    are kept per process (core.config): read only."""
    return list(_ladder())


def tier_level_of(level_id: int, *, levels: list[TierLevel] | None = None) -> TierLevel:
    """The level with this id, from the ladder (a level made since this process read the
    ladder is read from the database)."""
    for level in levels if levels is not None else _ladder():
        if level.pk == level_id:
            return level
    return TierLevel.objects.get(pk=level_id)


@dataclass(frozen=True)
class Figures:
    spend: Decimal = Decimal(0)
    points: int = 0


def qualified_level(*, levels: list[TierLevel], figures: Figures) -> TierLevel:
    """The highest level these figures qualify for (spend or points); the base level at least."""
    best = levels[0]
    for level in levels[1:]:
        by_spend = level.qualify_spend > 0 and figures.spend >= level.qualify_spend
        by_points = level.qualify_points > 0 and figures.points >= level.qualify_points
        if by_spend or by_points:
            best = level
    return best


def retains(*, level: TierLevel, figures: Figures) -> bool:
    """Whether the figures keep `level` at its anniversary (no retention figure: kept)."""
    if level.retain_spend <= 0 and level.retain_points <= 0:
        return True
    return (level.retain_spend > 0 and figures.spend >= level.retain_spend) or (
        level.retain_points > 0 and figures.points >= level.retain_points
    )


def activity_figures(
    *,
    member_id: int,
    after: datetime.datetime,
    until: datetime.datetime | None,
    inclusive: bool = True,
) -> Figures:
    """Spend and points earned in (after, until] (or (after, until) when not inclusive;
    no end when `until` is None)."""
    rows = QualifyingActivity.objects.filter(member_id=member_id, occurred_at__gt=after)
    if until is not None:
        rows = (
            rows.filter(occurred_at__lte=until) if inclusive else rows.filter(occurred_at__lt=until)
        )
    totals = rows.aggregate(spend=Sum("spend"), points=Sum("points"))
    return Figures(spend=totals["spend"] or Decimal(0), points=totals["points"] or 0)


def qualifying_window_start(
    *, status: MemberTier | None, at: datetime.datetime
) -> datetime.datetime:
    """Where the rolling 12 months begin for a member, or later after a downgrade."""
    start = months_before(at, QUALIFYING_MONTHS)
    if status is not None and status.counts_from is not None and status.counts_from > start:
        return status.counts_from
    return start


@dataclass(frozen=True)
class MemberTierInfo:
    level: TierLevel
    status: MemberTier | None

    @property
    def valid_until(self) -> datetime.date | None:
        return self.status.valid_until if self.status else None

    @property
    def is_override(self) -> bool:
        return bool(self.status and self.status.override_until)


def member_tier(*, member: Member | int, levels: list[TierLevel] | None = None) -> MemberTierInfo:
    """The member's tier now (the base level when no tier was ever reached)."""
    if isinstance(member, Member) and member_read_for_summary(member):
        # Read with the member (`summary_reads`).
        status = member.tier_status if hasattr(member, "tier_status") else None
    else:
        member_id = member if isinstance(member, int) else member.pk
        status = MemberTier.objects.filter(member_id=member_id).first()
    levels = levels if levels is not None else tier_levels()
    if status is not None:
        # The ladder this process keeps, rather than a join on every read.
        status.level = tier_level_of(status.level_id, levels=levels)
        return MemberTierInfo(level=status.level, status=status)
    return MemberTierInfo(level=levels[0], status=None)


def member_earn_multiplier(*, member: Member | int) -> Decimal:
    """The earn multiplier of the member's tier now (`member_tier`: no query when the member
    was read with their tier row; 1 without levels): what a purchase's plan needs of tiers."""
    return member_tier(member=member).level.earn_multiplier if _ladder() else Decimal(1)


def member_tier_rank(*, member: Member | int) -> int:
    return member_tier(member=member).level.rank


@dataclass(frozen=True)
class Goal:
    """What a member still needs for a level: spend or points, whichever comes first."""

    level: TierLevel
    # None: this level is not reached by that figure.
    spend_needed: Decimal | None
    points_needed: int | None
    spend_target: Decimal
    points_target: int
    spend_done: Decimal
    points_done: int

    @property
    def percent(self) -> int:
        """The further of the two bars, 0–100."""
        shares = []
        if self.spend_target > 0:
            shares.append(self.spend_done / self.spend_target)
        if self.points_target > 0:
            shares.append(Decimal(self.points_done) / self.points_target)
        share = max(shares) if shares else Decimal(1)
        return int(max(Decimal(0), min(Decimal(1), share)) * 100)

    @property
    def met(self) -> bool:
        return self.spend_needed == 0 or self.points_needed == 0


@dataclass(frozen=True)
class TierProgress:
    info: MemberTierInfo
    levels: list[TierLevel]
    rolling: Figures
    next_goal: Goal | None
    retain_goal: Goal | None
    history: list[TierHistory]


def _goal(*, level: TierLevel, spend: Decimal, points: int, retain: bool) -> Goal:
    spend_target = level.retain_spend if retain else level.qualify_spend
    points_target = level.retain_points if retain else level.qualify_points
    return Goal(
        level=level,
        spend_target=spend_target,
        points_target=points_target,
        spend_done=spend,
        points_done=points,
        spend_needed=max(spend_target - spend, Decimal(0)) if spend_target > 0 else None,
        points_needed=max(points_target - points, 0) if points_target > 0 else None,
    )


def member_tier_progress(
    *, member: Member, now: datetime.datetime, with_history: bool = True
) -> TierProgress:
    """The member's tier, what the next level needs, what keeping this one needs, and (unless
    `with_history` is off: the portal home's panel shows none) the tier changes."""
    levels = tier_levels()
    info = member_tier(member=member, levels=levels)
    window_start = qualifying_window_start(status=info.status, at=now)
    rolling = activity_figures(member_id=member.pk, after=window_start, until=now)
    # Levels reached only by hand (no qualifying figure) are no goal to show.
    higher = [
        level
        for level in levels
        if level.rank > info.level.rank and (level.qualify_spend > 0 or level.qualify_points > 0)
    ]
    next_goal = (
        _goal(level=higher[0], spend=rolling.spend, points=rolling.points, retain=False)
        if higher
        else None
    )
    retain_goal = None
    if info.status is not None and not info.level.is_base and not info.is_override:
        since = activity_figures(member_id=member.pk, after=info.status.period_start, until=now)
        retain_goal = _goal(level=info.level, spend=since.spend, points=since.points, retain=True)
    history = tier_history(member=member, limit=20) if with_history else []
    return TierProgress(
        info=info,
        levels=levels,
        rolling=rolling,
        next_goal=next_goal,
        retain_goal=retain_goal,
        history=history,
    )


def tier_history(*, member: Member, limit: int = 50) -> list[TierHistory]:
    return list(
        TierHistory.objects.filter(member=member).select_related("from_level", "to_level", "actor")[
            :limit
        ]
    )


def member_tier_export(member: Member) -> dict:
    """The member's tier and its history for "download my data"."""
    info = member_tier(member=member)
    return {
        "tier": {
            "code": info.level.code,
            "valid_until": info.valid_until.isoformat() if info.valid_until else None,
            "manual_until": (
                info.status.override_until.isoformat()
                if info.status and info.status.override_until
                else None
            ),
        },
        "tier_history": [
            {
                "from": h.from_level.code if h.from_level else None,
                "to": h.to_level.code,
                "reason": h.reason,
                "at": h.at.isoformat(),
                "valid_until": h.valid_until.isoformat() if h.valid_until else None,
            }
            for h in tier_history(member=member, limit=1000)
        ],
    }
