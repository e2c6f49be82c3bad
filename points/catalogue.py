"""Writes for setup: the earning policy row, categories, their rates and rewards (seed_demo,
scripts).

Administrators edit them all in the Django admin; these "ensure" services create what is
missing and leave whatever exists alone (it may have been edited since), so running the
setup again is safe.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from members.services import audit_log

from .models import Category, CategoryRate, EarningPolicy, Reward, RewardTierPrice


def earning_policy_ensure() -> EarningPolicy:
    """The one policy row, created with the defaults if there is none yet."""
    with transaction.atomic():
        policy = EarningPolicy.objects.select_for_update().order_by("pk").first()
        if policy is None:
            policy = EarningPolicy.objects.create()
            audit_log(actor=None, action="policy.create", target=policy)
    return policy


def category_ensure(*, code: str, name_zh: str, name_en: str) -> Category:
    code = code.strip()
    if not code:
        raise ValueError("a category needs a code")
    with transaction.atomic():
        category, created = Category.objects.get_or_create(
            code=code, defaults={"name_zh": name_zh, "name_en": name_en}
        )
        if created:
            audit_log(
                actor=None,
                action="category.create",
                target=category,
                details={"code": code},
            )
    return category


def category_rate_ensure(*, category: str, rate: Decimal, note: str = "") -> CategoryRate:
    if rate < 0:
        raise ValueError("a category rate cannot be negative")
    with transaction.atomic():
        category_rate, created = CategoryRate.objects.get_or_create(
            category=category.strip(), defaults={"rate": rate, "note": note}
        )
        if created:
            audit_log(
                actor=None,
                action="category_rate.create",
                target=category_rate,
                details={"category": category_rate.category, "rate": str(rate)},
            )
    return category_rate


def reward_ensure(
    *,
    code: str,
    kind: str,
    name_zh: str,
    name_en: str,
    points_price: int,
    description_zh: str = "",
    description_en: str = "",
    amount_off: Decimal | None = None,
    percent_off: int | None = None,
    min_spend: Decimal | None = None,
    stock: int | None = None,
    per_member_limit: int | None = None,
    min_tier_rank: int = 1,
    tier_prices: dict[int, int] | None = None,
) -> tuple[Reward, bool]:
    """The reward with `code`, created with these details (and tier prices) if missing.

    Returns (reward, created). The model's constraints refuse an incoherent reward (a ¥0
    coupon, a 满减 whose threshold is below its saving).
    """
    code = code.strip()
    with transaction.atomic():
        reward = Reward.objects.filter(code=code).first()
        if reward is not None:
            return reward, False
        reward = Reward.objects.create(
            code=code,
            kind=kind,
            name_zh=name_zh,
            name_en=name_en,
            description_zh=description_zh,
            description_en=description_en,
            points_price=points_price,
            amount_off=amount_off,
            percent_off=percent_off,
            min_spend=min_spend,
            stock=stock,
            per_member_limit=per_member_limit,
            min_tier_rank=min_tier_rank,
        )
        RewardTierPrice.objects.bulk_create(
            RewardTierPrice(reward=reward, tier_rank=rank, points_price=price)
            for rank, price in sorted((tier_prices or {}).items())
        )
        audit_log(
            actor=None,
            action="reward.create",
            target=reward,
            details={"code": code, "points_price": points_price},
        )
    return reward, True
