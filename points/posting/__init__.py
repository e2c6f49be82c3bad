"""One way to post a purchase: plan it (`plan`, pure Python), then write the plans
(`writers`, a batch of any size; PostgreSQL set-based or the portable ORM).

The writers' names are loaded on first use (`points.ledger` imports the plan, and the
writers import the ledger).
"""

from typing import Any

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

_WRITER_NAMES = ("PostingOutcome", "postings_write", "statement_writer_used")


def __getattr__(name: str) -> Any:
    if name in _WRITER_NAMES:
        from . import writers

        return getattr(writers, name)
    raise AttributeError(name)


__all__ = [
    "EarningRules",
    "MemberFacts",
    "PlanRefused",
    "PlannedLine",
    "PostingOutcome",
    "PurchasePosting",
    "birthday_month_of",
    "debt_split",
    "debt_splits",
    "eligible_amount",
    "expiry_for",
    "points_earned",
    "postings_write",
    "promotion_multiplier",
    "purchase_fingerprint",
    "purchase_key",
    "purchase_plan",
    "statement_writer_used",
]
