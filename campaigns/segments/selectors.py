"""What the builder shows of a segment: its count, the reachability funnel, a sample and
the rows of its export. Each is one query over the compiled rules (compiler.py)."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models.expressions import RawSQL

from analytics.models import RiskBand, Stage
from analytics.rfm import rfm_cell_label
from campaigns.messages import CAP_CHANNELS, capped_members_sql
from campaigns.models import OutboxMessage
from members.models import Member
from tiers.selectors import tier_levels

from .compiler import FALSE, segment_compile, segment_count_sql, segment_members_sql

EXPORT_BATCH = 2000

# Who each channel can reach with a marketing message: consent and an address.
_REACHABLE = {
    OutboxMessage.Channel.SMS: "(m.consent_sms AND m.phone IS NOT NULL AND m.phone <> '')",
    OutboxMessage.Channel.EMAIL: "(m.consent_email AND m.email IS NOT NULL)",
    OutboxMessage.Channel.PORTAL: "(m.user_id IS NOT NULL)",
}


@dataclass(frozen=True)
class SegmentFunnel:
    matching: int
    reachable_sms: int
    reachable_email: int
    reachable_portal: int
    # By any of the channels asked about.
    reachable: int
    # Expected after the holdout: reachable × (1 − holdout share), rounded.
    after_holdout: int
    # Of those, the members a message can still reach now: not at the frequency cap, or
    # reachable by a channel the cap does not count (in-portal notices).
    after_cap: int


def segment_count(*, rules: dict, at: datetime.datetime) -> int:
    sql, params = segment_count_sql(rules=rules, at=at)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _expected(count: int, holdout_percent: Decimal) -> int:
    share = Decimal(1) - Decimal(holdout_percent) / 100
    return int((count * share).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def segment_funnel(
    *,
    rules: dict,
    at: datetime.datetime,
    holdout_percent: Decimal = Decimal(10),
    channels: Collection[str] = ("sms", "email", "portal"),
) -> SegmentFunnel:
    """The members matching, reachable per channel (consent and an address), reachable by
    any of `channels`, and what is expected to remain after the holdout and the frequency
    cap (campaigns.messages, its one home): one query."""
    compiled = segment_compile(rules=rules, at=at)
    capped_sql, capped_params = capped_members_sql(at=at)
    wanted = [_REACHABLE[c] for c in _REACHABLE if c in channels]
    uncapped = [_REACHABLE[c] for c in _REACHABLE if c in channels and c not in CAP_CHANNELS]
    capped = [_REACHABLE[c] for c in _REACHABLE if c in channels and c in CAP_CHANNELS]
    reachable = " OR ".join(wanted) or FALSE
    capped_ok = " OR ".join(capped) or FALSE
    after_cap = " OR ".join([*uncapped, f"(cap.member_id IS NULL AND ({capped_ok}))"])
    counts = ", ".join(
        f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"
        for condition in (
            _REACHABLE[OutboxMessage.Channel.SMS],
            _REACHABLE[OutboxMessage.Channel.EMAIL],
            _REACHABLE[OutboxMessage.Channel.PORTAL],
            reachable,
            f"({reachable}) AND ({after_cap})",
        )
    )
    from_where = compiled.from_where_with(
        join=f"LEFT JOIN ({capped_sql}) cap ON cap.member_id = m.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), {counts} {from_where}",
            [*capped_params, *compiled.params],
        )
        matching, sms, email, portal, any_channel, not_capped = cursor.fetchone()
    return SegmentFunnel(
        matching=matching,
        reachable_sms=sms,
        reachable_email=email,
        reachable_portal=portal,
        reachable=any_channel,
        after_holdout=_expected(any_channel, holdout_percent),
        after_cap=_expected(not_capped, holdout_percent),
    )


@dataclass(frozen=True)
class SegmentMemberRow:
    member_id: int
    member_no: str
    name: str
    phone_masked: str
    tier: str
    stage: str
    rfm_cell: str
    churn_band: str
    last_purchase_at: datetime.datetime | None


_ROW_COLUMNS = (
    "member_no",
    "name",
    "phone",
    "figures__stage",
    "figures__rfm_cell",
    "figures__churn_band",
    "figures__last_purchase_at",
    "tier_status__level__name_zh",
    "tier_status__level__name_en",
)


def _members(*, rules: dict, at: datetime.datetime):
    sql, params = segment_members_sql(rules=rules, at=at)
    return (
        Member.objects.filter(pk__in=RawSQL(sql, params))  # noqa: S611 - compiled, parameterised
        .select_related("figures", "tier_status__level")
        .only(*_ROW_COLUMNS)
        .order_by("pk")
    )


def _row(member: Member, base_tier: str) -> SegmentMemberRow:
    figures = getattr(member, "figures", None)
    status = getattr(member, "tier_status", None)
    stage = figures.stage if figures is not None else Stage.NEVER
    band = figures.churn_band if figures is not None else ""
    return SegmentMemberRow(
        member_id=member.pk,
        member_no=member.member_no,
        name=member.name,
        # Never a whole phone: a list of members is not a reveal.
        phone_masked=member.phone_masked,
        tier=str(status.level.name) if status is not None else base_tier,
        stage=str(Stage(stage).label),
        rfm_cell=str(rfm_cell_label(figures.rfm_cell)) if figures is not None else "",
        churn_band=str(RiskBand(band).label) if band else "",
        last_purchase_at=figures.last_purchase_at if figures is not None else None,
    )


def _base_tier_name() -> str:
    levels = tier_levels()
    return str(levels[0].name) if levels else ""


def segment_sample(*, rules: dict, at: datetime.datetime, size: int = 20) -> list[SegmentMemberRow]:
    """The first `size` matching members (by enrolment order), with masked phones."""
    base = _base_tier_name()
    return [_row(member, base) for member in _members(rules=rules, at=at)[:size]]


def segment_export_rows(*, rules: dict, at: datetime.datetime) -> Iterator[SegmentMemberRow]:
    """Every matching member, read in batches (for the streamed CSV)."""
    base = _base_tier_name()
    for member in _members(rules=rules, at=at).iterator(chunk_size=EXPORT_BATCH):
        yield _row(member, base)
