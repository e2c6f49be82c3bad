"""How many points a purchase earns: base rate, category rates, multipliers.

The tier multiplier comes from the tiers app (to the left of points); the campaigns app
registers its promotions here (it sits to the right of points in the
dependency order, so points cannot import it). Promotion multipliers — the birthday month
and campaigns — do not stack: the best one applies, unless the policy says they stack.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.utils import timezone

from members.models import Member
from tiers.selectors import member_tier

from .models import CategoryRate, EarningPolicy


@dataclass(frozen=True)
class PurchaseContext:
    member: Member
    store_code: str
    channel: str
    occurred_at: datetime.datetime
    categories: frozenset[str]


# (member, context) -> multiplier or None; register with `register_promotion_provider`.
PromotionProvider = Callable[[PurchaseContext], Decimal | None]

_promotion_providers: list[PromotionProvider] = []


def register_promotion_provider(provider: PromotionProvider) -> None:
    if provider not in _promotion_providers:
        _promotion_providers.append(provider)


def policy_get() -> EarningPolicy:
    policy = EarningPolicy.objects.order_by("pk").first()
    return policy if policy is not None else EarningPolicy()


def eligible_amount(*, amount: Decimal, lines: list[tuple[str, Decimal]]) -> Decimal:
    """The spend that earns at the base rate: category rates scale their lines, 0 excludes."""
    if not lines:
        return amount
    rates = dict(
        CategoryRate.objects.filter(category__in={c for c, _ in lines}).values_list(
            "category", "rate"
        )
    )
    return eligible_amount_at_rates(
        amount=amount, lines=lines, rates=rates, base_rate=policy_get().base_rate
    )


def eligible_amount_at_rates(
    *,
    amount: Decimal,
    lines: list[tuple[str, Decimal]],
    rates: dict[str, Decimal],
    base_rate: Decimal,
) -> Decimal:
    """`eligible_amount` with the category rates and the policy's base rate given."""
    if not lines:
        return amount
    policy_rate = base_rate or Decimal(1)
    total = Decimal(0)
    for category, line_amount in lines:
        rate = rates.get(category)
        # A category rate is in points per ¥1; relative to the base rate it scales the spend.
        total += line_amount if rate is None else line_amount * rate / policy_rate
    return total


def multiplier_for(*, context: PurchaseContext, policy: EarningPolicy) -> Decimal:
    tier = member_tier(member=context.member).level.earn_multiplier
    return tier * promotion_multiplier(context=context, policy=policy)


def promotion_multiplier(*, context: PurchaseContext, policy: EarningPolicy) -> Decimal:
    """The promotions' part of `multiplier_for` (campaigns, the birthday month): all but
    the tier."""
    promotions = [p(context) for p in _promotion_providers]
    promotions = [m for m in promotions if m is not None and m > 0]
    birthday = context.member.birthday
    if birthday and birthday.month == timezone.localtime(context.occurred_at).month:
        promotions.append(policy.birthday_multiplier)
    if not promotions:
        return Decimal(1)
    if policy.promotions_stack:
        promo = Decimal(1)
        for m in promotions:
            promo *= m
        return promo
    return max(promotions)


def promotion_providers_active() -> bool:
    """Whether another app registered promotions (their multipliers are read per purchase)."""
    return bool(_promotion_providers)


def points_for(*, eligible: Decimal, multiplier: Decimal, policy: EarningPolicy) -> int:
    """Rounded down per purchase."""
    value = (eligible * policy.base_rate * multiplier).quantize(Decimal(1), rounding=ROUND_FLOOR)
    return max(int(value), 0)


def points_per_cent(*, multiplier: Decimal, policy: EarningPolicy) -> tuple[int, int]:
    """`points_for` as a ratio of integers, for a set-based writer that is given it: for a
    purchase of c cents (c ≥ 0) without category lines, `points_for` earns exactly
    c × numerator // denominator — the same exact product, rounded down the same way."""
    numerator, denominator = (policy.base_rate * multiplier / 100).as_integer_ratio()
    return max(numerator, 0), denominator
