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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from core.config import config_cached
from members.models import Member
from tiers.selectors import member_earn_multiplier

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


@config_cached
def policy_get() -> EarningPolicy:
    """The earning policy (kept per process: read only)."""
    policy = EarningPolicy.objects.order_by("pk").first()
    return policy if policy is not None else EarningPolicy()


def earning_rules(*, policy: EarningPolicy | None = None) -> EarningRules:
    """The policy's figures and every category rate, for `purchase_plan`: kept per process
    (core.config; an administrator's edit reaches every process within seconds)."""
    if policy is None:
        return _earning_rules_current()
    return _rules(policy, dict(CategoryRate.objects.values_list("category", "rate")))


@config_cached
def _earning_rules_current() -> EarningRules:
    rates = dict(CategoryRate.objects.values_list("category", "rate"))
    # Shared by every purchase of the process: read only.
    return _rules(policy_get(), MappingProxyType(rates))


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


def purchase_configuration(*, member: Member) -> tuple[EarningRules, Decimal]:
    """`earning_rules()` (kept per process) and the member's tier multiplier
    (`member_earn_multiplier`: no query when the member was read with their tier)."""
    return earning_rules(), member_earn_multiplier(member=member)
