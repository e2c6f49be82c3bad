"""The inputs of the posting plan (`points.posting.plan`): earning rules and promotions.

The arithmetic of earning lives in the plan alone; this module reads what it needs — the
earning policy and category rates (`earning_rules`) — and holds the promotion providers:
the campaigns app registers its promotions here (it sits to the right of points in the
dependency order, so points cannot import it), and `promotions_for` asks them which
multipliers apply to a purchase. The birthday month is the policy's own promotion, applied
by the plan. Promotion multipliers do not stack: the best one applies, unless the policy
says they stack.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from django.db import connection

from core.bulk import prepared_fetchall
from members.models import Member
from tiers.selectors import earn_multiplier_of, member_earn_multiplier, member_earn_multiplier_sql

from .models import CategoryRate, EarningPolicy
from .posting.plan import EarningRules


@dataclass(frozen=True)
class PurchaseContext:
    member: Member
    store_code: str
    channel: str
    occurred_at: datetime.datetime
    categories: frozenset[str]


# (purchase context) -> the multiplier, or the multipliers (a provider with several
# promotions, e.g. one per campaign), or None; register with `register_promotion_provider`.
PromotionProvider = Callable[[PurchaseContext], Decimal | Iterable[Decimal] | None]

_promotion_providers: list[PromotionProvider] = []


def register_promotion_provider(provider: PromotionProvider) -> None:
    if provider not in _promotion_providers:
        _promotion_providers.append(provider)


def promotion_provider_unregister(provider: PromotionProvider) -> None:
    if provider in _promotion_providers:
        _promotion_providers.remove(provider)


def promotion_providers_active() -> bool:
    """Whether another app registered promotions (their multipliers are read per purchase)."""
    return bool(_promotion_providers)


def promotions_for(*, context: PurchaseContext) -> tuple[Decimal, ...]:
    """The multipliers of the registered promotions that apply to this purchase."""
    found = []
    for provider in _promotion_providers:
        answer = provider(context)
        if isinstance(answer, Decimal):
            found.append(answer)
        elif answer is not None:
            found.extend(answer)
    return tuple(m for m in found if m is not None and m > 0)


def policy_get() -> EarningPolicy:
    policy = EarningPolicy.objects.order_by("pk").first()
    return policy if policy is not None else EarningPolicy()


def earning_rules(*, policy: EarningPolicy | None = None) -> EarningRules:
    """The policy's figures and every category rate, for `purchase_plan`; read afresh each
    time (an administrator's edit takes effect at the next purchase): on PostgreSQL in one
    query."""
    if policy is None and connection.vendor == "postgresql":
        return _earning_rules_pg()
    policy = policy or policy_get()
    return _rules(policy, dict(CategoryRate.objects.values_list("category", "rate")))


@functools.cache
def _configuration_sql(*, member: bool) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(
        f"p.{quote(EarningPolicy._meta.get_field(f).column)}" for f in _POLICY_FIELDS
    )
    rate = CategoryRate._meta
    table = quote(rate.db_table)
    category, value = (quote(rate.get_field(name).column) for name in ("category", "rate"))
    return (
        f"SELECT p.id, {columns}, "  # noqa: S608 - our own table and column names
        f"(SELECT array_agg({category} ORDER BY {category}) FROM {table}), "
        f"(SELECT array_agg({value} ORDER BY {category}) FROM {table}), "
        f"{member_earn_multiplier_sql() if member else 'NULL'} "
        f"FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT * FROM "
        f"{quote(EarningPolicy._meta.db_table)} ORDER BY id LIMIT 1) AS p ON true"
    )


@functools.lru_cache(maxsize=16)
def _rules_of(
    policy_row: tuple[Any, ...], categories: tuple[str, ...], rates: tuple[Decimal, ...]
) -> EarningRules:
    """The rules of the policy row read (id first, then `_POLICY_FIELDS`) and the category
    rates: the same row read again gives the same (immutable) rules without a model."""
    policy = EarningPolicy()
    if policy_row[0] is not None:
        for name, value in zip(_POLICY_FIELDS, policy_row[1:], strict=True):
            setattr(policy, name, value)
    # Shared by every purchase that reads these figures: read only.
    return _rules(policy, MappingProxyType(dict(zip(categories, rates, strict=True))))


def _rules(policy: EarningPolicy, rates: Mapping[str, Decimal]) -> EarningRules:
    return EarningRules(
        base_rate=policy.base_rate,
        birthday_multiplier=policy.birthday_multiplier,
        promotions_stack=policy.promotions_stack,
        pending_days=policy.pending_days,
        points_per_yuan=policy.points_per_yuan,
        referral_bonus=(
            policy.referral_bonus if policy.referral_bonus and policy.referral_cap_per_year else 0
        ),
        rates=rates,
    )


_POLICY_FIELDS = (
    "base_rate",
    "birthday_multiplier",
    "promotions_stack",
    "pending_days",
    "points_per_yuan",
    "referral_bonus",
    "referral_cap_per_year",
)


def purchase_configuration(*, member_id: int) -> tuple[EarningRules, Decimal]:
    """`earning_rules()` and the member's tier multiplier (`member_earn_multiplier`), read
    afresh for each purchase: on PostgreSQL in one round trip."""
    if connection.vendor == "postgresql":
        return _earning_rules_pg(member_id=member_id)
    return earning_rules(), member_earn_multiplier(member=member_id)


def _earning_rules_pg(
    *, member_id: int | None = None
) -> EarningRules | tuple[EarningRules, Decimal]:
    # Prepared: read on every live purchase.
    (row,) = prepared_fetchall(
        _configuration_sql(member=member_id is not None),
        [member_id] if member_id is not None else [],
    )
    rules = _rules_of(row[: len(_POLICY_FIELDS) + 1], tuple(row[-3] or ()), tuple(row[-2] or ()))
    return rules if member_id is None else (rules, earn_multiplier_of(row[-1]))
