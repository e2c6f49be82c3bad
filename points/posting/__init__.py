"""One way to post a purchase: plan it (`plan`, pure Python), then write the plans
(`writers`, a batch of any size; PostgreSQL set-based or the portable ORM)."""

from .plan import (
    EarningRules,
    MemberFacts,
    PlannedLine,
    PlanRefused,
    PurchasePosting,
    birthday_month_of,
    debt_split,
    debt_splits,
    eligible_amount,
    expiry_for,
    points_earned,
    promotion_multiplier,
    purchase_fingerprint,
    purchase_key,
    purchase_plan,
)

__all__ = [
    "EarningRules",
    "MemberFacts",
    "PlanRefused",
    "PlannedLine",
    "PurchasePosting",
    "birthday_month_of",
    "debt_split",
    "debt_splits",
    "eligible_amount",
    "expiry_for",
    "points_earned",
    "promotion_multiplier",
    "purchase_fingerprint",
    "purchase_key",
    "purchase_plan",
]
