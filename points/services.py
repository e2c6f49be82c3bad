"""Writes for points: purchases, returns, adjustments, expiry.

Each service is one database transaction that locks the member's points account first
(`account_lock`), checks for an earlier posting of the same request, then writes. Messages
and other slow work go in `transaction.on_commit`.
"""

from __future__ import annotations

import datetime
import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, Store, User
from members.selectors import staff_store_allowed
from members.services import audit_log
from tiers.models import QualifyingActivity
from tiers.selectors import member_tier_rank as tier_member_rank
from tiers.services import tier_activity_record, tier_member_merge

from .earning import (
    PurchaseContext,
    policy_get,
    promotion_providers_active,
    promotions_for,
    purchase_configuration,
)
from .hooks import purchase_posted
from .ledger import (
    IdempotencyConflict,
    PointsError,
    account_lock,
    fingerprint,
    lots_expire,
    points_credit,
    points_debit,
    points_refund,
    points_reverse,
    points_transfer,
    transaction_replayed,
)
from .models import (
    Account,
    Coupon,
    LedgerTransaction,
    LotMovement,
    PointsAdjustment,
    Purchase,
    Redemption,
    Return,
    Reward,
)
from .posting import (
    MemberFacts,
    PlannedLine,
    PlanRefused,
    PurchasePosting,
    birthday_month_of,
    purchase_plan,
)
from .posting.writers import CONFLICT, INACTIVE, REPLAYED, PostingOutcome, postings_write
from .purchase_limits import purchase_limits_check, return_time_check
from .selectors import adjustment_staff_day_used, reward_units_held

CENT = Decimal("0.01")


class InvalidPurchase(PointsError):
    code = "invalid"


class PurchaseNotFound(InvalidPurchase):
    code = "not_found"


class ReturnExceedsPurchase(PointsError):
    code = "return_exceeds_purchase"


class StoreNotYours(PointsError):
    """A member of staff recording for a store that is not on their login
    (members.selectors.staff_store_allowed)."""


def _store_act_check(*, actor: User | None, store: Store) -> None:
    # Only a person is limited to their stores; a POS token is bound to its store already.
    if actor is not None and not staff_store_allowed(user=actor, store=store):
        raise StoreNotYours(f"{actor} does not act for store {store.code}")


class CrossStoreReturnRefused(PointsError):
    """A return at one store for a purchase at another, with POINTS_CROSS_STORE_RETURNS off."""

    code = "cross_store_return"


class AdjustmentNotAllowed(PointsError):
    code = "adjustment_not_allowed"


P = ParamSpec("P")
R = TypeVar("R")


def _answer_a_lost_key_race(post: Callable[P, R]) -> Callable[P, R]:
    """Two requests with one idempotency key for different members, at the same moment (two
    tills sending one receipt number): each locks only its own member's account, so both
    pass the replay check, and the later insert of the key waits for the first request's
    commit and then fails on the unique constraint. Nothing of the loser was written (its
    transaction or savepoint is rolled back), so it is simply asked again: the first
    request's posting is now committed, and the replay check answers as for any later
    request with that key, `IdempotencyConflict` (or the first result, for the same
    request). An IntegrityError that the second attempt meets too is not a race: it is raised.
    """

    @functools.wraps(post)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return post(*args, **kwargs)
        except IntegrityError:
            return post(*args, **kwargs)

    return wrapped


@dataclass(frozen=True)
class LineInput:
    sku: str
    amount: Decimal
    category: str = ""
    quantity: Decimal = Decimal(1)


@dataclass(frozen=True)
class PurchaseResult:
    purchase: Purchase
    created: bool


@_answer_a_lost_key_race
def purchase_record(
    *,
    member: Member,
    store: Store,
    receipt_no: str,
    occurred_at: datetime.datetime,
    amount: Decimal,
    channel: str = Purchase.Channel.STORE,
    lines: list[LineInput] | tuple[LineInput, ...] = (),
    points_to_use: int = 0,
    actor: User | None = None,
    now: datetime.datetime | None = None,
) -> PurchaseResult:
    """Record a purchase, spend any points used as payment and post the points it earns.

    A purchase over the cap or dated outside the window around `now` is refused
    (`purchase_limits`: `AmountOverLimit`, `OccurredAtOutOfRange`); `now` is the time it
    is recorded (the demo data passes its own to record a history as it happened).
    The same store + receipt again returns the first result; with different details it is
    refused (`IdempotencyConflict`). Validate, read what the plan needs, plan
    (`posting.purchase_plan`), write (`posting.writers.postings_write`, a batch of one: on
    PostgreSQL one set-based statement, elsewhere the ORM).
    """
    _store_act_check(actor=actor, store=store)
    now = now or timezone.now()
    receipt_no = receipt_no.strip()
    amount = Decimal(amount).quantize(CENT)
    if not receipt_no:
        raise InvalidPurchase("receipt number is required")
    if amount <= 0:
        raise InvalidPurchase("amount must be positive")
    if channel not in Purchase.Channel.values:
        raise InvalidPurchase(f"unknown channel {channel}")
    if points_to_use < 0:
        raise InvalidPurchase("points_to_use cannot be negative")
    if lines and sum(line.amount for line in lines).quantize(CENT) != amount:
        raise InvalidPurchase("the lines do not add up to the amount")
    if any(line.amount < 0 for line in lines):
        raise InvalidPurchase("a line amount cannot be negative")

    signed_in = actor is not None and actor.is_authenticated
    rules, tier_multiplier = purchase_configuration(member=member)
    planned_lines = tuple(
        PlannedLine(
            sku=line.sku,
            category=line.category,
            quantity=line.quantity,
            amount=line.amount.quantize(CENT),
        )
        for line in lines
    )
    promotions = ()
    if promotion_providers_active():
        promotions = promotions_for(
            context=PurchaseContext(
                member=member,
                store_code=store.code,
                channel=channel,
                occurred_at=occurred_at,
                categories=frozenset(line.category for line in lines),
            )
        )
    try:
        posting = purchase_plan(
            member=MemberFacts(
                member_id=member.pk,
                member_no=member.member_no,
                active=member.status == Member.Status.ACTIVE,
                birthday_month=birthday_month_of(member.birthday),
                tier_multiplier=tier_multiplier,
                # Only for what may be a first purchase (the writer re-checks under the
                # lock): a later one does not lock the referrer's account too.
                referrer_id=(
                    member.referrer_id
                    if rules.referral_bonus
                    and member.referrer_id
                    and not Purchase.objects.filter(member_id=member.pk).exists()
                    else None
                ),
            ),
            store_id=store.pk,
            store_code=store.code,
            receipt_no=receipt_no,
            channel=channel,
            occurred_at=occurred_at,
            amount=amount,
            lines=planned_lines,
            points_to_use=points_to_use,
            rules=rules,
            promotions=promotions,
            actor_id=actor.pk if signed_in else None,
            audited=signed_in,
        )
    except PlanRefused as refused:
        raise InvalidPurchase(str(refused)) from None
    try:
        purchase_limits_check(amount=amount, occurred_at=occurred_at, now=now)
    except PointsError:
        # Before anything is written. A receipt already recorded gets the answer it gets in
        # range: a till retrying a purchase recorded while it was in range (a day later, or
        # after the cap was lowered) gets its first answer, other details a conflict.
        existing = Purchase.objects.filter(store=store, receipt_no=receipt_no).first()
        if existing is None:
            raise
        if existing.fingerprint != posting.fingerprint:
            raise IdempotencyConflict(posting.key) from None
        return PurchaseResult(purchase=existing, created=False)
    # A refusal raised inside the block takes back the account the writer may have created.
    with transaction.atomic():
        (outcome,) = postings_write(postings=[posting], now=now, actor=actor)
        if outcome.outcome == CONFLICT:
            raise IdempotencyConflict(posting.key)
        if outcome.outcome == INACTIVE:
            raise MemberInactive("the member is not active")
        if outcome.outcome != REPLAYED:
            purchase_posted(member_id=member.pk, occurred_at=occurred_at)
    if outcome.outcome == REPLAYED:
        return PurchaseResult(purchase=Purchase.objects.get(pk=outcome.purchase_id), created=False)
    return PurchaseResult(
        purchase=_purchase_as_written(
            posting=posting, outcome=outcome, member=member, store=store, actor=actor, now=now
        ),
        created=True,
    )


_PURCHASE_COLUMNS = [field.attname for field in Purchase._meta.concrete_fields]


def _purchase_as_written(
    *,
    posting: PurchasePosting,
    outcome: PostingOutcome,
    member: Member,
    store: Store,
    actor: User | None,
    now: datetime.datetime,
) -> Purchase:
    """The purchase row the writer stored, built as a query would build it (no read back),
    with the member and store objects the caller gave."""
    values = {
        "id": outcome.purchase_id,
        "member_id": member.pk,
        "store_id": store.pk,
        "channel": posting.channel,
        "receipt_no": posting.receipt_no,
        "occurred_at": posting.occurred_at,
        "amount": posting.amount,
        "points_used": posting.points_used,
        "eligible_amount": posting.eligible_amount,
        "points_earned": posting.points,
        "returned_amount": Decimal("0.00"),
        "earn_transaction_id": outcome.earn_transaction_id,
        "payment_transaction_id": outcome.payment_transaction_id,
        "fingerprint": posting.fingerprint,
        "recorded_by_id": posting.actor_id,
        "recorded_at": outcome.recorded_at,
        "history": posting.history,
    }
    purchase = Purchase.from_db(
        Purchase.objects.db, _PURCHASE_COLUMNS, [values[c] for c in _PURCHASE_COLUMNS]
    )
    Purchase.member.field.set_cached_value(purchase, member)
    Purchase.store.field.set_cached_value(purchase, store)
    return purchase


@dataclass(frozen=True)
class ReturnResult:
    purchase_return: Return
    created: bool

    @property
    def points_reversed(self) -> int:
        return self.purchase_return.points_reversed

    @property
    def history(self) -> bool:
        """The purchase was imported as history: it earned no points here, so a return of
        it reverses none (`history_message` says so)."""
        return self.purchase_return.purchase.history

    @property
    def history_message(self) -> str:
        return str(HISTORY_RETURN_MESSAGE) if self.history else ""


HISTORY_RETURN_MESSAGE = _("imported as history: no points to reverse")


@_answer_a_lost_key_race
def return_record(
    *,
    store: Store,
    receipt_no: str,
    original_receipt_no: str,
    amount: Decimal,
    occurred_at: datetime.datetime,
    original_store: Store | None = None,
    actor: User | None = None,
    actor_label: str = "",
    now: datetime.datetime | None = None,
) -> ReturnResult:
    """Record a (partial) return: reverse the purchase's points in proportion, rounded down.

    Proportion is taken on the running total returned, so two half returns reverse exactly
    what one full return would. Returning more than is left of the purchase, or a return
    dated before the purchase (`ReturnBeforePurchase`) or ahead of the clock
    (`ReturnDatedAhead`), is refused.
    A return at another store than the purchase's is refused when POINTS_CROSS_STORE_RETURNS
    is off, and audited (`purchase.return_cross_store`) when it is on, whoever records it;
    `actor_label` names a non-person actor (an API token) in that entry. `now` is when the
    return is recorded (default: now), as for `purchase_record`.
    """
    _store_act_check(actor=actor, store=store)
    receipt_no = receipt_no.strip()
    amount = Decimal(amount).quantize(CENT)
    if not receipt_no:
        raise InvalidPurchase("return receipt number is required")
    if amount <= 0:
        raise InvalidPurchase("amount must be positive")
    original_store = original_store or store
    purchase = Purchase.objects.filter(
        store=original_store, receipt_no=original_receipt_no.strip()
    ).first()
    if purchase is None:
        raise PurchaseNotFound("no purchase with that receipt number at that store")
    request_fingerprint = fingerprint(
        {
            "store": store.code,
            "receipt_no": receipt_no,
            "original": f"{original_store.code}:{purchase.receipt_no}",
            "amount": str(amount),
            "occurred_at": occurred_at.isoformat(),
        }
    )
    key = f"return:{store.code}:{receipt_no}"
    with transaction.atomic():
        account = account_lock(member=purchase.member)
        existing = Return.objects.filter(store=store, receipt_no=receipt_no).first()
        if existing is not None:
            if existing.fingerprint != request_fingerprint:
                raise IdempotencyConflict(key)
            return ReturnResult(purchase_return=existing, created=False)
        cross_store = original_store.pk != store.pk
        if cross_store and not settings.POINTS_CROSS_STORE_RETURNS:
            raise CrossStoreReturnRefused(
                f"the purchase was made at {original_store.code}, not at {store.code}"
            )
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        return_time_check(
            occurred_at=occurred_at, purchased_at=purchase.occurred_at, now=now or timezone.now()
        )
        if purchase.returned_amount + amount > purchase.amount:
            raise ReturnExceedsPurchase(
                f"¥{amount} is more than the ¥{purchase.net_amount} left of this purchase"
            )
        returned_after = purchase.returned_amount + amount
        reversed_before = sum(purchase.returns.values_list("points_reversed", flat=True))
        reversed_after = int(
            (Decimal(purchase.points_earned) * returned_after / purchase.amount).quantize(
                Decimal(1), rounding=ROUND_FLOOR
            )
        )
        points = reversed_after - reversed_before
        if points > 0:
            # Points of this earning that have expired are gone already: reversing them again
            # would charge the member twice and could take the balance negative although
            # nothing was spent (only spent points may do that).
            expired = -(
                LotMovement.objects.filter(
                    lot__transaction=purchase.earn_transaction,
                    transaction__kind=LedgerTransaction.Kind.EXPIRE,
                ).aggregate(total=Sum("amount"))["total"]
                or 0
            )
            points = max(0, min(points, purchase.points_earned - expired - reversed_before))
        txn = None
        if points > 0:
            txn = points_reverse(
                account=account,
                original=purchase.earn_transaction,
                points=points,
                key=key,
                request_fingerprint=request_fingerprint,
                source=LedgerTransaction.Source.RETURN,
                source_ref=receipt_no,
                occurred_at=occurred_at,
                actor=actor,
            )
        purchase.returned_amount = returned_after
        purchase.save(update_fields=["returned_amount"])
        # Counted when it happens: a return lowers the spend of the window it falls in.
        tier_activity_record(
            member=purchase.member,
            occurred_at=occurred_at,
            spend=-amount,
            points=-points,
            source=QualifyingActivity.Source.RETURN,
        )
        purchase_return = Return.objects.create(
            purchase=purchase,
            store=store,
            receipt_no=receipt_no,
            amount=amount,
            occurred_at=occurred_at,
            points_reversed=points,
            transaction=txn,
            fingerprint=request_fingerprint,
            recorded_by=actor if actor is not None and actor.is_authenticated else None,
        )
        if actor is not None and actor.is_authenticated:
            audit_log(
                actor=actor,
                action="purchase.return",
                target=purchase_return,
                member=purchase.member,
                details={"receipt_no": receipt_no, "amount": str(amount), "points": points},
            )
        if cross_store:
            audit_log(
                actor=actor,
                actor_label=actor_label,
                action="purchase.return_cross_store",
                target=purchase_return,
                member=purchase.member,
                details={
                    "store": store.code,
                    "receipt_no": receipt_no,
                    "original_store": original_store.code,
                    "original_receipt_no": purchase.receipt_no,
                    "amount": str(amount),
                    "points": points,
                },
            )
    return ReturnResult(purchase_return=purchase_return, created=True)


class AdjustmentLimitExceeded(AdjustmentNotAllowed):
    """An adjustment above the limit of the one who asks for it."""

    code = "adjustment_limit"

    def __init__(
        self,
        message: str,
        *,
        authority: str,
        limit: int,
        daily: bool = False,
        ceiling: bool = False,
    ) -> None:
        self.authority = authority
        self.limit = limit
        self.daily = daily
        # Above POINTS_ADJUST_MAX: refused whoever asks, approval or not.
        self.ceiling = ceiling
        # For a daily refusal: what the member's store-staff adjustments of the day used.
        self.used = 0
        super().__init__(message)


class ApprovalRequired(AdjustmentLimitExceeded):
    """Above the manager limit: an administrator's request waits for a second administrator."""

    code = "approval_required"


class AdjustmentDecisionRefused(AdjustmentNotAllowed):
    code = "adjustment_decision_refused"


def adjustment_authority(*, user: User | None) -> str:
    """The limit a user adjusts under: the highest their permissions give (staff otherwise)."""
    Authority = PointsAdjustment.Authority
    if user is not None and user.is_authenticated:
        if user.has_perm("points.approve_adjustment"):
            return Authority.ADMINISTRATOR
        if user.has_perm("points.adjust_unlimited"):
            return Authority.MANAGER
    return Authority.STAFF


def adjustment_limit(*, authority: str) -> int:
    """Points per adjustment: store staff POINTS_ADJUST_STAFF_MAX, others the manager limit
    (an administrator may ask for more, with a second administrator's approval)."""
    if authority == PointsAdjustment.Authority.STAFF:
        return settings.POINTS_ADJUST_STAFF_MAX
    return settings.POINTS_ADJUST_MANAGER_MAX


def adjustment_check(
    *, member: Member, points: int, reason: str, actor: User, now: datetime.datetime
) -> str:
    """Refuse an adjustment the rules or the actor's limits do not allow; returns the
    authority it is made under. Raises `ApprovalRequired` when only a second administrator
    can let it through, `AdjustmentLimitExceeded` above the actor's limit or, for everyone,
    above POINTS_ADJUST_MAX. Called by the service under the account lock, and by the form's
    confirmation step (without it) to show the refusal before anything is asked."""
    if member.status not in (Member.Status.ACTIVE, Member.Status.FROZEN):
        raise AdjustmentNotAllowed("the member's account is closed")
    if not (reason or "").strip():
        raise AdjustmentNotAllowed("a reason is required")
    if points == 0:
        raise AdjustmentNotAllowed("an adjustment must change the balance")
    authority = adjustment_authority(user=actor)
    ceiling = settings.POINTS_ADJUST_MAX
    if abs(points) > ceiling:
        raise AdjustmentLimitExceeded(
            f"no adjustment may move more than {ceiling} points",
            authority=authority,
            limit=ceiling,
            ceiling=True,
        )
    limit = adjustment_limit(authority=authority)
    if abs(points) > limit:
        if authority == PointsAdjustment.Authority.ADMINISTRATOR:
            raise ApprovalRequired(
                f"adjustments above {limit} points need a second administrator's approval",
                authority=authority,
                limit=limit,
            )
        raise AdjustmentLimitExceeded(
            f"adjustments above {limit} points need a higher role",
            authority=authority,
            limit=limit,
        )
    if authority == PointsAdjustment.Authority.STAFF:
        daily = settings.POINTS_ADJUST_STAFF_DAILY_MAX
        used = adjustment_staff_day_used(member=member, at=now)
        if used + abs(points) > daily:
            error = AdjustmentLimitExceeded(
                f"store staff adjust at most {daily} points per member per day; "
                f"{used} are used today",
                authority=authority,
                limit=daily,
                daily=True,
            )
            error.used = used
            raise error
    return authority


def _adjustment_fingerprint(*, member: Member, points: int, reason: str) -> str:
    return fingerprint({"member": member.member_no, "points": points, "reason": reason})


def _adjustment_post(
    *,
    account: Account,
    member: Member,
    points: int,
    reason: str,
    key: str,
    request_fingerprint: str,
    actor: User | None,
    now: datetime.datetime,
) -> LedgerTransaction:
    common = {
        "account": account,
        "points": abs(points),
        "kind": LedgerTransaction.Kind.ADJUST,
        "counter_kind": Account.Kind.ADJUSTMENT,
        "key": f"adjust:{key}",
        "request_fingerprint": request_fingerprint,
        "source": LedgerTransaction.Source.STAFF,
        "reason": reason,
        "occurred_at": now,
        "actor": actor,
    }
    if points > 0:
        return points_credit(**common, counts_as_earned=False)
    return points_debit(**common, now=now)


def points_adjust(
    *,
    member: Member,
    points: int,
    reason: str,
    actor: User,
    idempotency_key: str,
    now: datetime.datetime | None = None,
) -> LedgerTransaction:
    """A manual correction by staff, posted at once: reason required; within the actor's
    limit (store staff per adjustment and per member per day, managers per adjustment);
    audited with the limit it was made under. Above the manager limit an administrator
    uses `points_adjust_request` instead (`ApprovalRequired` says so)."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    request_fingerprint = _adjustment_fingerprint(member=member, points=points, reason=reason)
    with transaction.atomic():
        account = account_lock(member=member)
        existing = transaction_replayed(
            key=f"adjust:{idempotency_key}", request_fingerprint=request_fingerprint
        )
        if existing is not None:
            return existing
        if PointsAdjustment.objects.filter(key=idempotency_key).exists():
            raise IdempotencyConflict(idempotency_key)  # the key of a pending request
        # Under the lock: two tills adjusting the same member queue here, so the day's
        # total for store staff is read after the other one's adjustment committed.
        authority = adjustment_check(
            member=member, points=points, reason=reason, actor=actor, now=now
        )
        txn = _adjustment_post(
            account=account,
            member=member,
            points=points,
            reason=reason,
            key=idempotency_key,
            request_fingerprint=request_fingerprint,
            actor=actor,
            now=now,
        )
        adjustment = PointsAdjustment.objects.create(
            member=member,
            points=points,
            reason=reason,
            key=idempotency_key,
            fingerprint=request_fingerprint,
            authority=authority,
            status=PointsAdjustment.Status.POSTED,
            requested_by=actor if actor is not None and actor.is_authenticated else None,
            requested_at=now,
            transaction=txn,
        )
        audit_log(
            actor=actor,
            action="points.adjust",
            target=txn,
            member=member,
            details={
                "points": points,
                "reason": reason,
                "authority": authority,
                "limit": adjustment_limit(authority=authority),
                "adjustment": adjustment.pk,
            },
        )
    return txn


def points_adjust_request(
    *,
    member: Member,
    points: int,
    reason: str,
    actor: User,
    idempotency_key: str,
    now: datetime.datetime | None = None,
) -> PointsAdjustment:
    """An administrator's adjustment above the manager limit: kept pending, nothing posted,
    until a second administrator approves it (`points_adjust_approve`). The same key again
    returns the same request; with other values it is refused."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    request_fingerprint = _adjustment_fingerprint(member=member, points=points, reason=reason)
    with transaction.atomic():
        account_lock(member=member)
        existing = PointsAdjustment.objects.filter(key=idempotency_key).first()
        if existing is not None:
            if existing.fingerprint != request_fingerprint or existing.member_id != member.pk:
                raise IdempotencyConflict(idempotency_key)
            return existing
        try:
            adjustment_check(member=member, points=points, reason=reason, actor=actor, now=now)
        except ApprovalRequired:
            pass
        else:
            raise AdjustmentNotAllowed("this adjustment is within the limit: post it directly")
        adjustment = PointsAdjustment.objects.create(
            member=member,
            points=points,
            reason=reason,
            key=idempotency_key,
            fingerprint=request_fingerprint,
            authority=PointsAdjustment.Authority.ADMINISTRATOR,
            status=PointsAdjustment.Status.PENDING,
            requested_by=actor,
            requested_at=now,
        )
        audit_log(
            actor=actor,
            action="points.adjust_request",
            target=adjustment,
            member=member,
            details={
                "points": points,
                "reason": reason,
                "limit": settings.POINTS_ADJUST_MANAGER_MAX,
            },
        )
    return adjustment


def _adjustment_decidable(*, adjustment: PointsAdjustment, actor: User) -> None:
    if not actor.has_perm("points.approve_adjustment"):
        raise AdjustmentDecisionRefused("only an administrator can decide on this adjustment")
    if adjustment.requested_by_id == actor.pk:
        raise AdjustmentDecisionRefused("a second administrator must decide, not the requester")


def points_adjust_approve(
    *, adjustment: PointsAdjustment, actor: User, now: datetime.datetime | None = None
) -> PointsAdjustment:
    """A second administrator approves a pending adjustment: only now is it posted, once
    (approving again returns it as it is; a rejected one stays rejected)."""
    now = now or timezone.now()
    with transaction.atomic():
        member = Member.objects.get(points_adjustments=adjustment.pk)
        account = account_lock(member=member)
        adjustment = PointsAdjustment.objects.select_for_update().get(pk=adjustment.pk)
        _adjustment_decidable(adjustment=adjustment, actor=actor)
        if adjustment.status == PointsAdjustment.Status.POSTED:
            return adjustment
        if adjustment.status == PointsAdjustment.Status.REJECTED:
            raise AdjustmentDecisionRefused("this adjustment was rejected")
        if member.status not in (Member.Status.ACTIVE, Member.Status.FROZEN):
            raise AdjustmentNotAllowed("the member's account is closed")
        txn = _adjustment_post(
            account=account,
            member=member,
            points=adjustment.points,
            reason=adjustment.reason,
            key=adjustment.key,
            request_fingerprint=adjustment.fingerprint,
            actor=actor,
            now=now,
        )
        adjustment.status = PointsAdjustment.Status.POSTED
        adjustment.transaction = txn
        adjustment.decided_by = actor
        adjustment.decided_at = now
        adjustment.save(update_fields=["status", "transaction", "decided_by", "decided_at"])
        audit_log(
            actor=actor,
            action="points.adjust_approve",
            target=adjustment,
            member=member,
            details={
                "points": adjustment.points,
                "reason": adjustment.reason,
                "requested_by": str(adjustment.requested_by or ""),
                "transaction": txn.pk,
            },
        )
    return adjustment


def points_adjust_reject(
    *,
    adjustment: PointsAdjustment,
    actor: User,
    note: str = "",
    now: datetime.datetime | None = None,
) -> PointsAdjustment:
    """A second administrator rejects a pending adjustment: nothing is posted."""
    now = now or timezone.now()
    note = (note or "").strip()
    with transaction.atomic():
        adjustment = PointsAdjustment.objects.select_for_update().get(pk=adjustment.pk)
        _adjustment_decidable(adjustment=adjustment, actor=actor)
        if adjustment.status == PointsAdjustment.Status.REJECTED:
            return adjustment
        if adjustment.status == PointsAdjustment.Status.POSTED:
            raise AdjustmentDecisionRefused("this adjustment was already approved and posted")
        adjustment.status = PointsAdjustment.Status.REJECTED
        adjustment.decided_by = actor
        adjustment.decided_at = now
        adjustment.decision_note = note[:300]
        adjustment.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit_log(
            actor=actor,
            action="points.adjust_reject",
            target=adjustment,
            member=adjustment.member,
            details={"points": adjustment.points, "reason": adjustment.reason, "note": note},
        )
    return adjustment


def points_expire(*, at: datetime.datetime, batch_size: int | None = None, workers: int = 1) -> int:
    """Expire every lot due by `at`, a batch of accounts per transaction; idempotent.

    Tells the nightly job running it (if any) how many of the due lots are done after each
    batch; `batch_size` defaults to settings.POINTS_EXPIRY_BATCH accounts. On PostgreSQL,
    outside a transaction, `workers` connections take the batches in turn.
    """
    # Imported here to keep this change to the expiry lines of a busy module.
    from core.jobs import job_progress

    return lots_expire(
        at=at,
        batch_size=batch_size or settings.POINTS_EXPIRY_BATCH,
        workers=workers,
        progress=lambda done, total: job_progress(done=done, total=total),
    )


class RewardUnavailable(PointsError):
    code = "reward_unavailable"


class MemberInactive(InvalidPurchase, RewardUnavailable):
    """A frozen (or closed) member can neither earn nor redeem. A subclass of both errors
    callers already catch for it, so they keep working; the API tells it apart."""

    code = "member_inactive"


class OutOfStock(PointsError):
    code = "out_of_stock"


class LimitReached(PointsError):
    code = "limit_reached"


class TierRequired(PointsError):
    code = "tier_required"


class CouponError(PointsError):
    code = "coupon_error"


class CouponNotFound(CouponError):
    code = "not_found"


class CouponUsed(CouponError):
    code = "coupon_used"


class CouponExpired(CouponError):
    code = "coupon_expired"


class CouponVoid(CouponError):
    code = "coupon_void"


class CouponNotAccepted(CouponError):
    """A donation: the member gave the points away; there is nothing to take at a till."""

    code = "not_a_coupon"


COUPON_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def coupon_code_generate() -> str:
    """16 characters from 32: 80 random bits, not guessable at the till or over the API."""
    return "".join(secrets.choice(COUPON_ALPHABET) for _ in range(16))


def member_tier_rank(*, member: Member) -> int:
    """The member's tier rank for reward rules (1 = the base level)."""
    return tier_member_rank(member=member)


def reward_price_for(*, reward: Reward, member: Member, rank: int | None = None) -> int:
    rank = rank if rank is not None else tier_member_rank(member=member)
    prices = [reward.points_price] + [
        tp.points_price for tp in reward.tier_prices.all() if tp.tier_rank <= rank
    ]
    return min(prices)


@dataclass(frozen=True)
class RedemptionResult:
    redemption: Redemption
    # None for a donation: the member gets a receipt (redemption.donation_receipt_no).
    coupon: Coupon | None
    created: bool


@_answer_a_lost_key_race
def reward_redeem(
    *,
    member: Member,
    reward: Reward,
    idempotency_key: str,
    actor: User | None = None,
    now: datetime.datetime | None = None,
) -> RedemptionResult:
    """Spend points on a reward and issue its coupon.

    Locks the member's account first (so a member's concurrent redemptions queue and the
    per-member limit holds), then takes one unit of stock with a conditional UPDATE (so
    concurrent redeemers of the last unit cannot oversell).
    """
    now = now or timezone.now()
    key = f"redeem:{idempotency_key}"
    request_fingerprint = fingerprint({"member": member.member_no, "reward": reward.code})
    with transaction.atomic():
        account = account_lock(member=member)
        existing = transaction_replayed(key=key, request_fingerprint=request_fingerprint)
        if existing is not None:
            redemption = existing.redemption
            coupon = Coupon.objects.filter(redemption=redemption).first()
            return RedemptionResult(redemption=redemption, coupon=coupon, created=False)
        reward = Reward.objects.get(pk=reward.pk)
        if (
            not reward.is_active
            or (reward.available_from and now < reward.available_from)
            or (reward.available_until and now >= reward.available_until)
        ):
            raise RewardUnavailable("this reward is not available now")
        if member.status != Member.Status.ACTIVE:
            raise MemberInactive("the member is not active")
        # The tier now, under the account's lock: not one read with the member earlier in
        # the request (a downgrade in between must not buy the higher tier's price).
        rank = tier_member_rank(member=member.pk)
        if rank < reward.min_tier_rank:
            raise TierRequired("a higher tier is required for this reward")
        if reward.per_member_limit is not None:
            taken = reward_units_held(reward=reward, member_ids=[member.pk]).get(member.pk, 0)
            if taken >= reward.per_member_limit:
                raise LimitReached("the limit for this reward is reached")
        price = reward_price_for(reward=reward, member=member, rank=rank)
        txn = points_debit(
            account=account,
            points=price,
            kind=LedgerTransaction.Kind.REDEEM,
            counter_kind=Account.Kind.REDEMPTION,
            key=key,
            request_fingerprint=request_fingerprint,
            source=LedgerTransaction.Source.REWARD,
            source_ref=reward.code,
            occurred_at=now,
            now=now,
            actor=actor,
        )
        if reward.stock is not None:
            taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
            if not taken:
                raise OutOfStock("this reward is out of stock")
        redemption = Redemption.objects.create(
            member=member, reward=reward, points_spent=price, transaction=txn, created_at=now
        )
        if not reward.is_coupon:
            # A donation is given, not shown at a till: a receipt, no coupon to accept.
            audit_log(
                actor=actor,
                action="reward.donate",
                target=redemption,
                member=member,
                details={
                    "reward": reward.code,
                    "points": price,
                    "receipt": redemption.donation_receipt_no,
                },
            )
            return RedemptionResult(redemption=redemption, coupon=None, created=True)
        valid_days = reward.coupon_valid_days or policy_get().coupon_valid_days
        coupon = Coupon.objects.create(
            code=coupon_code_generate(),
            member=member,
            reward=reward,
            redemption=redemption,
            source=Coupon.Source.REDEMPTION,
            issued_at=now,
            valid_until=now + datetime.timedelta(days=valid_days),
        )
        audit_log(
            actor=actor,
            action="reward.redeem",
            target=redemption,
            member=member,
            details={"reward": reward.code, "points": price, "coupon": coupon.code},
        )
    return RedemptionResult(redemption=redemption, coupon=coupon, created=True)


class VoidRefused(PointsError):
    code = "void_refused"


class DonationNotVoidable(VoidRefused):
    code = "donation_not_voidable"


def redemption_void(
    *,
    redemption: Redemption,
    actor: User | None,
    reason: str,
    now: datetime.datetime | None = None,
) -> Redemption:
    """Void an unused redemption, for a reason (kept on it, on the refund and in the audit
    log): the coupon is void, stock and points go back. A donation is given: not voided."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise VoidRefused("a reason is required")
    with transaction.atomic():
        # The member as stored now: a merge may have moved the redemption since it was read.
        owner = Member.objects.get(redemptions=redemption.pk)
        account = account_lock(member=owner)
        redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
        if redemption.status == Redemption.Status.VOID:
            return redemption
        coupon = Coupon.objects.select_for_update().filter(redemption=redemption).first()
        if coupon is None or not redemption.reward.is_coupon:
            raise DonationNotVoidable("a donation is given and cannot be voided")
        if coupon.status == Coupon.Status.USED:
            raise CouponUsed("the coupon was already used")
        # An expired coupon was the member's to use; letting it lapse does not refund it.
        if coupon.status == Coupon.Status.EXPIRED or coupon.valid_until <= now:
            raise CouponExpired("the coupon has expired")
        refund = points_refund(
            account=account,
            original=redemption.transaction,
            key=f"void:{redemption.pk}",
            occurred_at=now,
            actor=actor,
            reason=reason[:300],
        )
        redemption.status = Redemption.Status.VOID
        redemption.voided_at = now
        redemption.void_reason = reason[:300]
        redemption.refund_transaction = refund
        redemption.save(update_fields=["status", "voided_at", "void_reason", "refund_transaction"])
        coupon.status = Coupon.Status.VOID
        coupon.save(update_fields=["status"])
        if redemption.reward.stock is not None:
            Reward.objects.filter(pk=redemption.reward_id).update(stock=F("stock") + 1)
        audit_log(
            actor=actor,
            action="reward.void",
            target=redemption,
            member=redemption.member,
            details={"points": redemption.points_spent, "coupon": coupon.code, "reason": reason},
        )
    return redemption


def coupon_use(
    *,
    code: str,
    store: Store,
    receipt_no: str = "",
    actor: User | None = None,
    now: datetime.datetime | None = None,
) -> Coupon:
    """Mark a coupon used at the till; a coupon is used once, and never after it expires."""
    _store_act_check(actor=actor, store=store)
    now = now or timezone.now()
    code = (code or "").strip().upper().replace(" ", "").replace("-", "")
    with transaction.atomic():
        coupon = Coupon.objects.select_for_update().filter(code=code).first()
        if coupon is None:
            raise CouponNotFound("no coupon with this code")
        # A donation's code (from before donations gave receipts) buys nothing at a till.
        if not Reward.objects.get(pk=coupon.reward_id).is_coupon:
            raise CouponNotAccepted("this is a donation receipt, not a coupon")
        if coupon.status == Coupon.Status.USED:
            raise CouponUsed("this coupon was already used")
        if coupon.status == Coupon.Status.VOID:
            raise CouponVoid("this coupon was voided")
        if coupon.status == Coupon.Status.EXPIRED or coupon.valid_until <= now:
            raise CouponExpired("this coupon has expired")
        coupon.status = Coupon.Status.USED
        coupon.used_at = now
        coupon.used_store = store
        coupon.used_receipt_no = receipt_no.strip()
        coupon.used_by = actor if actor is not None and actor.is_authenticated else None
        coupon.save(update_fields=["status", "used_at", "used_store", "used_receipt_no", "used_by"])
        audit_log(
            actor=actor,
            action="coupon.use",
            target=coupon,
            member=coupon.member,
            details={"store": store.code, "receipt_no": coupon.used_receipt_no},
        )
    return coupon


def coupons_expire(*, at: datetime.datetime) -> int:
    """Mark issued coupons past their validity as expired (one UPDATE)."""
    return Coupon.objects.filter(status=Coupon.Status.ISSUED, valid_until__lte=at).update(
        status=Coupon.Status.EXPIRED
    )


class MergeRefused(PointsError):
    code = "merge_refused"


def member_merge(
    *, source: Member, target: Member, actor: User, now: datetime.datetime | None = None
) -> Member:
    """Merge a duplicate `source` into `target`: points (a ledger transfer that keeps each
    lot's expiry), purchases, redemptions and coupons move; the source is closed as merged,
    its phone and e-mail freed, and its history stays readable under its own number.
    """
    now = now or timezone.now()
    if source.pk == target.pk:
        raise MergeRefused("a member cannot be merged into itself")
    with transaction.atomic():
        # Both accounts locked, lower member id first, like every other posting path.
        for member in sorted([source, target], key=lambda m: m.pk):
            account_lock(member=member)
        source = Member.objects.select_for_update().get(pk=source.pk)
        target = Member.objects.select_for_update().get(pk=target.pk)
        for member in (source, target):
            if member.status not in (Member.Status.ACTIVE, Member.Status.FROZEN):
                raise MergeRefused(f"member {member.member_no} is {member.status}")
        if source.user_id and target.user_id:
            raise MergeRefused("both members have a login; close one of the logins first")
        source_account = Account.objects.get(member=source)
        target_account = Account.objects.get(member=target)
        transfer = points_transfer(
            source=source_account,
            target=target_account,
            key=f"merge:{source.pk}:{target.pk}",
            occurred_at=now,
            actor=actor,
            reason=f"merged into {target.member_no}",
        )
        moved = {
            "purchases": Purchase.objects.filter(member=source).update(member=target),
            "redemptions": Redemption.objects.filter(member=source).update(member=target),
            "coupons": Coupon.objects.filter(member=source).update(member=target),
            "points": -transfer.member_amount if transfer is not None else 0,
        }
        tier_member_merge(source=source, target=target, at=now)
        user, email = source.user, source.email
        source.status = Member.Status.MERGED
        source.merged_into = target
        source.closed_at = now
        source.phone = None
        source.email = None
        source.user = None
        source.consent_sms = source.consent_email = False
        source.save()  # first, so its e-mail and login are free for the target
        target.user = target.user or user
        target.email = target.email or email
        target.save()
        audit_log(
            actor=actor,
            action="member.merge",
            target=target,
            member=target,
            details={"source": source.member_no, "target": target.member_no, **moved},
        )
        audit_log(
            actor=actor,
            action="member.merge",
            target=source,
            member=source,
            details={"source": source.member_no, "target": target.member_no, **moved},
        )
    return target
