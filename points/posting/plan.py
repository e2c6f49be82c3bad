"""What a purchase posts, decided once, in plain Python: the posting plan.

`purchase_plan` is given everything it depends on — the member's facts (tier multiplier,
birthday month, status, referrer), the earning rules (policy and category rates), the
multipliers of the promotions that apply — and reads no table. It returns a frozen
`PurchasePosting` holding every figure a writer stores: the points (base rate × category
rates × tier multiplier × the promotions' multiplier, rounded down per purchase), the
idempotency key and fingerprint, the lot's expiry and availability, the qualifying activity,
the referral bonus of a first purchase and the audit details. The writers
(`points.posting.writers`) only lock, check replay and store these values; the one figure
that needs a locked row, the debt paid first, is decided here too (`debt_split`), from the
debt the writer read under the lock.

Promotions: the birthday month is the policy's own promotion; other apps (campaigns) supply
theirs through `points.earning.register_promotion_provider`, and the caller hands the
multipliers that apply to this purchase in `promotions`. The best multiplier applies,
unless the policy says promotions stack (then they multiply).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

CENT = Decimal("0.01")
_ONE = Decimal(1)
BUSINESS_TZ = ZoneInfo(settings.TIME_ZONE)


@dataclass(frozen=True)
class EarningRules:
    """The earning policy's figures and the category rates, as read at one time."""

    base_rate: Decimal = Decimal(1)
    birthday_multiplier: Decimal = Decimal(2)
    promotions_stack: bool = False
    pending_days: int = 0
    points_per_yuan: int = 100
    # Points to the referrer for a referee's first purchase: 0 when the policy pays none.
    referral_bonus: int = 0
    rates: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberFacts:
    """What the plan needs of the member, read before the posting's locks."""

    member_id: int
    member_no: str
    active: bool = True
    birthday_month: int = 0  # 0: no birthday given
    tier_multiplier: Decimal = _ONE
    # The referrer to pay if this is the member's first purchase (the writer re-checks
    # "first" under the lock); None when nothing would be paid.
    referrer_id: int | None = None


@dataclass(frozen=True)
class PlannedLine:
    sku: str
    category: str
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True)
class PurchasePosting:
    """Everything one purchase writes; a writer decides nothing of it."""

    member_id: int
    member_no: str
    member_active: bool
    store_id: int
    store_code: str
    receipt_no: str
    channel: str
    occurred_at: datetime.datetime
    amount: Decimal
    lines: tuple[PlannedLine, ...]
    points_used: int
    eligible_amount: Decimal  # as stored: to the cent, rounded down
    points: int  # earned; 0 for a history purchase
    key: str
    payment_key: str
    fingerprint: str
    available_at: datetime.datetime
    expires_at: datetime.datetime
    activity_spend: Decimal
    activity_points: int
    referrer_id: int | None
    referral_bonus: int
    history: bool
    actor_id: int | None
    audit: Mapping[str, Any] | None


class PlanRefused(ValueError):
    """Points used as payment that the rules do not allow (steps, more than the amount)."""


def birthday_month_of(birthday: datetime.date | None) -> int:
    return birthday.month if birthday else 0


def promotion_multiplier(
    *,
    promotions: Iterable[Decimal],
    birthday_month: int,
    occurred_at: datetime.datetime,
    rules: EarningRules,
) -> Decimal:
    """The promotions' part of the multiplier (all but the tier): the best one, or all
    multiplied when the policy says they stack; 1 when none applies."""
    applying = [m for m in promotions if m is not None and m > 0]
    if birthday_month and birthday_month == occurred_at.astimezone(BUSINESS_TZ).month:
        applying.append(rules.birthday_multiplier)
    if not applying:
        return _ONE
    if rules.promotions_stack:
        product = _ONE
        for multiplier in applying:
            product *= multiplier
        return product
    return max(applying)


def eligible_amount(
    *, amount: Decimal, lines: Sequence[tuple[str, Decimal]], rules: EarningRules
) -> Decimal:
    """The spend that earns at the base rate: category rates scale their lines, 0 excludes."""
    if not lines:
        return amount
    policy_rate = rules.base_rate or _ONE
    total = Decimal(0)
    for category, line_amount in lines:
        rate = rules.rates.get(category) if category else None
        # A category rate is in points per ¥1; relative to the base rate it scales the spend.
        total += line_amount if rate is None else line_amount * rate / policy_rate
    return total


@functools.lru_cache(maxsize=256)
def _ratio(rate: Decimal) -> tuple[int, int]:
    return rate.as_integer_ratio()


def points_earned(*, eligible: Decimal, multiplier: Decimal, base_rate: Decimal) -> int:
    """eligible × base rate × multiplier, rounded down per purchase, never negative."""
    if eligible == eligible.quantize(CENT):
        # In integers (cents × the rate's exact fraction): the same number as the Decimal
        # product, without its 28-digit context, a third of the time.
        numerator, denominator = _ratio(base_rate * multiplier)
        cents = int(eligible * 100)
        return max(cents * numerator // (denominator * 100), 0)
    value = (eligible * base_rate * multiplier).quantize(_ONE, rounding=ROUND_FLOOR)
    return max(int(value), 0)


def purchase_key(*, store_code: str, receipt_no: str) -> str:
    return f"purchase:{store_code}:{receipt_no}"


_json_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses


def purchase_fingerprint(
    *,
    member_no: str,
    store_code: str,
    receipt_no: str,
    occurred_iso: str,
    amount_text: str,
    channel: str,
    lines: Sequence[tuple[str, str, str, str]],
    points_to_use: int,
) -> str:
    """The hash that tells a retried purchase from another with the same receipt.

    `ledger.fingerprint` of {amount, channel, lines [[sku, category, quantity, amount]],
    member, occurred_at, points_to_use, receipt_no, store}, written out as its JSON text
    (keys sorted, the same separators and escaping) rather than built and dumped: the same
    hash in a fifth of the time. Amounts as text to the cent, quantities as `str()`.
    """
    line_text = ", ".join(
        f"[{_json_string(sku)}, {_json_string(category)}, {_json_string(quantity)}, "
        f"{_json_string(amount)}]"
        for sku, category, quantity, amount in lines
    )
    text = (
        f'{{"amount": "{amount_text}", "channel": {_json_string(channel)}, '
        f'"lines": [{line_text}], '
        f'"member": {_json_string(member_no)}, "occurred_at": "{occurred_iso}", '
        f'"points_to_use": {int(points_to_use)}, "receipt_no": {_json_string(receipt_no)}, '
        f'"store": {_json_string(store_code)}}}'
    )
    return hashlib.sha256(text.encode()).hexdigest()


def expiry_for(earned_at: datetime.datetime) -> datetime.datetime:
    """The end of the 12th month after the month earned, Asia/Shanghai (the next instant:
    a lot is spendable while now < expires_at). Earned 2026-03-15 → 2027-04-01 00:00."""
    local = earned_at.astimezone(BUSINESS_TZ)
    return _month_end_next_year(local.year, local.month)


@functools.lru_cache(maxsize=512)
def _month_end_next_year(year: int, month: int) -> datetime.datetime:
    if month == 12:
        return datetime.datetime(year + 2, 1, 1, tzinfo=BUSINESS_TZ)
    return datetime.datetime(year + 1, month + 1, 1, tzinfo=BUSINESS_TZ)


def payment_value(*, points_to_use: int, amount: Decimal, rules: EarningRules) -> Decimal:
    """The money the points used as payment stand for; refused off-step or over the amount."""
    if not points_to_use:
        return Decimal(0)
    per_yuan = Decimal(rules.points_per_yuan)
    if Decimal(points_to_use) % per_yuan:
        raise PlanRefused(f"points are used in steps of {rules.points_per_yuan}")
    paid = (Decimal(points_to_use) / per_yuan).quantize(CENT, rounding=ROUND_FLOOR)
    if paid > amount:
        raise PlanRefused("points used pay more than the amount")
    return paid


def purchase_plan(
    *,
    member: MemberFacts,
    store_id: int,
    store_code: str,
    receipt_no: str,
    channel: str,
    occurred_at: datetime.datetime,
    amount: Decimal,
    lines: Sequence[PlannedLine] = (),
    points_to_use: int = 0,
    rules: EarningRules,
    promotions: Iterable[Decimal] = (),
    history: bool = False,
    actor_id: int | None = None,
    audited: bool = False,
    occurred_iso: str | None = None,
) -> PurchasePosting:
    """The posting of one purchase. `amount` is to the cent; `promotions` are the
    multipliers of the other apps' promotions that apply to it (`earning.promotions_for`).

    A history purchase (imported from another system for tiers and analytics) earns no
    points and pays no referral bonus: its spend still counts towards tiers.
    """
    lines = tuple(lines)
    amount_text = str(amount)
    fingerprint = purchase_fingerprint(
        member_no=member.member_no,
        store_code=store_code,
        receipt_no=receipt_no,
        occurred_iso=occurred_iso or occurred_at.isoformat(),
        amount_text=amount_text,
        channel=channel,
        lines=[
            (line.sku, line.category, str(line.quantity), str(line.amount.quantize(CENT)))
            for line in lines
        ],
        points_to_use=points_to_use,
    )
    key = purchase_key(store_code=store_code, receipt_no=receipt_no)
    paid_by_points = payment_value(points_to_use=points_to_use, amount=amount, rules=rules)
    eligible = eligible_amount(
        amount=amount, lines=[(line.category, line.amount) for line in lines], rules=rules
    )
    # Only the part paid with money earns points.
    if paid_by_points:
        eligible = eligible * (amount - paid_by_points) / amount
    if history:
        points = 0
    else:
        multiplier = member.tier_multiplier * promotion_multiplier(
            promotions=promotions,
            birthday_month=member.birthday_month,
            occurred_at=occurred_at,
            rules=rules,
        )
        points = points_earned(eligible=eligible, multiplier=multiplier, base_rate=rules.base_rate)
    referral_bonus = rules.referral_bonus if member.referrer_id and not history else 0
    return PurchasePosting(
        member_id=member.member_id,
        member_no=member.member_no,
        member_active=member.active,
        store_id=store_id,
        store_code=store_code,
        receipt_no=receipt_no,
        channel=channel,
        occurred_at=occurred_at,
        amount=amount,
        lines=lines,
        points_used=points_to_use,
        eligible_amount=eligible.quantize(CENT, rounding=ROUND_FLOOR),
        points=points,
        key=key,
        payment_key=f"{key}:payment",
        fingerprint=fingerprint,
        available_at=occurred_at + datetime.timedelta(days=rules.pending_days),
        expires_at=expiry_for(occurred_at),
        # Tiers count the whole amount (points used as payment too) and the points earned.
        activity_spend=amount,
        activity_points=points,
        referrer_id=member.referrer_id if referral_bonus else None,
        referral_bonus=referral_bonus,
        history=history,
        actor_id=actor_id,
        audit=(
            {"receipt_no": receipt_no, "amount": amount_text, "points": points} if audited else None
        ),
    )


def debt_split(*, debt: int, points: int) -> int:
    """The points of an earning that pay the member's debt first (the rest goes into a
    lot). The one place this is decided: `ledger._credit`, the writers and the imports
    call it with the debt read under the account's lock."""
    return min(max(debt, 0), max(points, 0))


def debt_splits(*, postings: Sequence[PurchasePosting], debts: Mapping[int, int]) -> list[int]:
    """`debt_split` of each posting of a batch, in batch order, from each member's locked
    debt (by member id): a member's debt is paid by their first earnings of the batch."""
    owed = {member_id: debt for member_id, debt in debts.items() if debt > 0}
    splits = [0] * len(postings)
    if not owed:
        return splits
    for index, posting in enumerate(postings):
        debt = owed.get(posting.member_id)
        if debt:
            paid = debt_split(debt=debt, points=posting.points)
            owed[posting.member_id] = debt - paid
            splits[index] = paid
    return splits
