"""POS API for points: purchases, returns, balances, rewards, redemptions and coupons.

Same conventions as the members API: a bearer token bound to one store, every error
`{"error": "<code>", "detail": "<message>"}`, nothing written when the answer is an error.
A retried request (same store + receipt, same redemption key) gets 200 with the result of
the first one; the same key with a different request gets 409 `idempotency_conflict`.
Money is in yuan: sent as a JSON number or string, returned as a string with 2 decimals.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, TypeVar

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from ninja import Field, P, PathEx, Router, Schema
from ninja.responses import Status

from core.money import money_format
from members.api import MEMBER_NO_MAX, STORE_CODE_MAX, TierOut
from members.api_common import NO_NUL, ErrorOut, InvalidOut, error_body, invalid_body, text_field
from members.models import Member, Store
from members.selectors import (
    member_find_open,
    member_get_for_summary,
    member_summary,
    store_get,
)
from members.services import api_token_label

from .earning import policy_get
from .ledger import BUSINESS_TZ, IdempotencyConflict, InsufficientPoints, PointsError, PointsInDebt
from .models import Coupon, Purchase, Reward
from .purchase_limits import (
    AmountOverLimit,
    OccurredAtOutOfRange,
    ReturnBeforePurchase,
    ReturnDatedAhead,
    limit_message,
)
from .selectors import (
    account_get,
    points_balance,
    points_expiring,
    reward_get,
    reward_list_available,
)
from .services import (
    CENT,
    CouponExpired,
    CouponNotAccepted,
    CouponNotFound,
    CouponUsed,
    CouponVoid,
    CrossStoreReturnRefused,
    InvalidPurchase,
    LimitReached,
    LineInput,
    MemberInactive,
    OutOfStock,
    PurchaseNotFound,
    ReturnExceedsPurchase,
    RewardUnavailable,
    TierRequired,
    coupon_use,
    purchase_record,
    return_record,
    reward_redeem,
)

router = Router(tags=["points"])
logger = logging.getLogger(__name__)
T = TypeVar("T")

# The model's limits, so that a bad request is a 400 and never a database error.
MAX_AMOUNT = Decimal("9999999999.99")
MAX_QUANTITY = Decimal("9999999.999")
QUANTITY_STEP = Decimal("0.001")
RECEIPT_MAX = 64
SKU_MAX = 64
CATEGORY_MAX = 50
IDEMPOTENCY_KEY_MAX = 100
REWARD_CODE_MAX = 30
COUPON_CODE_MAX = 40  # a 20-character code, typed with spaces or dashes
LINES_MAX = 1000


# --- Schemas ------------------------------------------------------------------------------


class BalanceOut(Schema):
    available: int
    pending: int


def money_field(*, allow_zero: bool = False) -> Any:
    """Yuan, at most 2 decimals, as a JSON number or a string."""
    limits = {"ge": 0} if allow_zero else {"gt": 0}
    return Field(
        ...,
        **limits,
        le=MAX_AMOUNT,
        decimal_places=2,
        description="Yuan with at most 2 decimal places, as a number or a string.",
    )


class LineIn(Schema):
    sku: str = text_field(min_length=1, max_length=SKU_MAX)
    category: str = text_field("", max_length=CATEGORY_MAX)
    quantity: Decimal = Field(Decimal(1), gt=0, le=MAX_QUANTITY, decimal_places=3)
    amount: Decimal = money_field(allow_zero=True)


class PurchaseIn(Schema):
    member_no: str = text_field(min_length=1, max_length=MEMBER_NO_MAX)
    store: str = text_field(min_length=1, max_length=STORE_CODE_MAX)
    receipt_no: str = text_field(min_length=1, max_length=RECEIPT_MAX)
    occurred_at: datetime.datetime = Field(
        ..., description="ISO 8601; without an offset, Asia/Shanghai time."
    )
    amount: Decimal = money_field()
    channel: Literal["store", "online", "app", "mini_program"] = "store"
    lines: list[LineIn] = Field([], max_length=LINES_MAX)
    points_to_use: int | None = Field(None, ge=0)


AFTER_WRITE = (
    "The member's figures after the write; null only when they could not be read just "
    "then: the write itself is recorded (ask again with the same request to get them)."
)


class PurchaseOut(Schema):
    purchase_id: int
    points_earned: int
    points_used: int
    balance: BalanceOut | None = Field(..., description=AFTER_WRITE)
    tier: TierOut | None = Field(..., description=AFTER_WRITE)


class ReturnIn(Schema):
    store: str = text_field(min_length=1, max_length=STORE_CODE_MAX)
    receipt_no: str = text_field(min_length=1, max_length=RECEIPT_MAX)
    original_receipt_no: str = text_field(min_length=1, max_length=RECEIPT_MAX)
    amount: Decimal = money_field()
    occurred_at: datetime.datetime = Field(
        ..., description="ISO 8601; without an offset, Asia/Shanghai time."
    )
    original_store: str | None = text_field(None, max_length=STORE_CODE_MAX)


class ReturnOut(Schema):
    points_reversed: int
    history: bool = Field(
        False,
        description="The purchase was imported as history: it earned no points, none reversed.",
    )
    message: str = Field("", description="Why no points were reversed, when it says.")
    balance: BalanceOut | None = Field(..., description=AFTER_WRITE)


class ExpiringOut(Schema):
    date: datetime.date
    points: int


class PointsOut(Schema):
    available: int
    pending: int
    lifetime_earned: int
    expiring: list[ExpiringOut]


class RewardOut(Schema):
    code: str
    kind: str
    name: str
    description: str
    points_price: int
    amount_off: Decimal | None
    percent_off: int | None
    min_spend: Decimal | None
    stock: int | None
    per_member_limit: int | None
    min_tier_rank: int
    available_until: datetime.datetime | None


class RedemptionIn(Schema):
    member_no: str = text_field(min_length=1, max_length=MEMBER_NO_MAX)
    reward: str = text_field(min_length=1, max_length=REWARD_CODE_MAX)
    idempotency_key: str = text_field(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)


class CouponOut(Schema):
    code: str
    valid_until: datetime.datetime


class RedemptionOut(Schema):
    redemption_id: int
    # None for a donation: no coupon to accept at a till, a receipt number instead.
    coupon: CouponOut | None
    donation_receipt_no: str | None = None
    points_spent: int
    balance: BalanceOut | None = Field(..., description=AFTER_WRITE)


class CouponUseIn(Schema):
    store: str = text_field(min_length=1, max_length=STORE_CODE_MAX)
    receipt_no: str = text_field("", max_length=RECEIPT_MAX)


class CouponRewardOut(Schema):
    code: str
    kind: str
    name: str
    amount_off: Decimal | None
    percent_off: int | None
    min_spend: Decimal | None


class CouponUsedOut(Schema):
    status: Literal["used"]
    code: str
    reward: CouponRewardOut


# --- Shared steps -------------------------------------------------------------------------


def _store_or_error(request: HttpRequest, code: str, *, field: str = "store") -> Store | Status:
    """The token's own store, or the error a till gets for naming another one."""
    token = request.auth
    code = code.strip()
    # The token's own store came with the token (kept per process, active when read).
    store = token.store if code == token.store.code else store_get(code=code)
    if store is None:
        return Status(400, invalid_body({field: _("There is no active store with this code.")}))
    if store.pk != token.store_id:
        return Status(
            403,
            error_body(
                "forbidden_store",
                _("This API token may only be used at store %(code)s.")
                % {"code": token.store.code},
            ),
        )
    return store


def _member_or_404(member_no: str, *, for_summary: bool = False) -> Member | Status:
    # Closed and anonymised members, and numbers with a wrong check digit, are not found.
    member = member_find_open(member_no=member_no.strip(), for_summary=for_summary)
    if member is None:
        return Status(404, error_body("not_found", _("No member matches.")))
    return member


# The years a business time may fall in, so that the ledger's date arithmetic (expiry a year
# on, tier windows a year back) stays within what Python and the database can hold: a
# time in year 1 or 9999 is a 400, never an overflow. How far back or ahead of now a
# purchase may be is a business rule of the services', not this.
BUSINESS_YEARS = (1900, 2999)


def _business_time(value: datetime.datetime) -> datetime.datetime | None:
    """A till's clock without an offset is Asia/Shanghai. Normalised to that zone so a
    retry that writes the same instant differently is still the same request. None for a
    time outside BUSINESS_YEARS."""
    if timezone.is_naive(value):
        value = value.replace(tzinfo=BUSINESS_TZ)
    try:
        value = value.astimezone(BUSINESS_TZ)
    except OverflowError:  # year 1 minus an offset, or year 9999 plus one
        return None
    if not BUSINESS_YEARS[0] <= value.year <= BUSINESS_YEARS[1]:
        return None
    return value


def _business_time_problem() -> str:
    return _("Enter a date and time between the years %(first)s and %(last)s.") % {
        "first": BUSINESS_YEARS[0],
        "last": BUSINESS_YEARS[1],
    }


def _text_problem(value: str, *, max_length: int) -> str | None:
    if not value.strip():
        return _("This field is required.")
    if len(value.strip()) > max_length:
        return _("This value is too long.")
    return None


def _read_after_write(read: Callable[[], T]) -> T | None:
    """A figure for the answer to a write that is already committed, or None if reading it
    fails: a till told "500" about a purchase that was recorded might record it again under
    another receipt number, so the answer is built from what is in hand instead."""
    try:
        return read()
    except Exception:
        logger.exception("POS API: reading the figures after a committed write failed")
        return None


def _balance_body(member_of: Callable[[], Member]) -> dict[str, int] | None:
    balance = _read_after_write(lambda: points_balance(member=member_of()))
    if balance is None:
        return None
    return {"available": balance.available, "pending": balance.pending}


def _localised(zh: str, en: str) -> str:
    # The till's Accept-Language picks the language (LocaleMiddleware); Chinese by default.
    if (translation.get_language() or "").startswith("en") and en:
        return en
    return zh


def _points_error_status(exc: PointsError) -> Status:
    """The status and translated message a till gets for a rule the ledger refused."""
    if isinstance(exc, IdempotencyConflict):
        return Status(
            409,
            error_body(
                "idempotency_conflict",
                _(
                    "This receipt number or idempotency key was already used for a "
                    "different request."
                ),
            ),
        )
    if isinstance(exc, InsufficientPoints):
        message = _("This needs %(needed)s points; the member has %(available)s available.") % {
            "needed": exc.needed,
            "available": exc.available,
        }
        return Status(422, error_body("insufficient_points", message))
    if isinstance(exc, PointsInDebt):
        message = _(
            "The member's balance is negative by %(debt)s points; points cannot be spent "
            "until new earnings cover it."
        ) % {"debt": exc.debt}
        return Status(422, error_body("negative_balance", message))
    if isinstance(
        exc, AmountOverLimit | OccurredAtOutOfRange | ReturnBeforePurchase | ReturnDatedAhead
    ):
        return Status(422, error_body(exc.code, limit_message(exc)))
    messages: dict[type[PointsError], tuple[int, str]] = {
        MemberInactive: (422, _("This member's account is frozen: it cannot earn or spend.")),
        PurchaseNotFound: (404, _("There is no purchase with this receipt number at this store.")),
        ReturnExceedsPurchase: (
            422,
            _("The amount is more than what is left of the purchase to return."),
        ),
        CrossStoreReturnRefused: (
            422,
            _(
                "This purchase was made at another store: returns are accepted only at the "
                "store of the purchase."
            ),
        ),
        RewardUnavailable: (422, _("This reward is not available now.")),
        OutOfStock: (422, _("This reward is out of stock.")),
        LimitReached: (422, _("The member has reached the limit for this reward.")),
        TierRequired: (422, _("The member's tier is too low for this reward.")),
        CouponNotFound: (404, _("There is no coupon with this code.")),
        CouponUsed: (409, _("This coupon has already been used.")),
        CouponExpired: (422, _("This coupon has expired.")),
        CouponVoid: (422, _("This coupon was cancelled.")),
        CouponNotAccepted: (
            422,
            _("This is a donation receipt, not a coupon: there is nothing to accept at the till."),
        ),
    }
    for kind in type(exc).__mro__:
        if kind in messages:
            status, message = messages[kind]
            return Status(status, error_body(exc.code, message))
    if isinstance(exc, InvalidPurchase):
        # The API checks the input first, so this is a rule it does not know about.
        return Status(
            400, invalid_body({}, _("The request is not valid: %(reason)s.") % {"reason": str(exc)})
        )
    raise exc


# Every POST may also answer 413 `too_large`: a body over 1 MB (loyalty_site.api).
ERRORS = {
    400: InvalidOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    413: ErrorOut,
}


# --- Purchases ----------------------------------------------------------------------------


def _purchase_field_problems(payload: PurchaseIn) -> dict[str, str]:
    # Lengths, amounts and quantities are the schema's (PurchaseIn): checked before this.
    fields: dict[str, str] = {}
    if problem := _text_problem(payload.receipt_no, max_length=RECEIPT_MAX):
        fields["receipt_no"] = problem
    if _business_time(payload.occurred_at) is None:
        fields["occurred_at"] = _business_time_problem()
    for i, line in enumerate(payload.lines):
        if problem := _text_problem(line.sku, max_length=SKU_MAX):
            fields[f"lines.{i}.sku"] = problem
    if payload.lines and not fields:
        total = sum(line.amount for line in payload.lines)
        if total != payload.amount:
            fields["lines"] = _("The lines add up to %(total)s, not the amount %(amount)s.") % {
                "total": money_format(total),
                "amount": money_format(payload.amount),
            }
    points = payload.points_to_use or 0
    if points:
        step = policy_get().points_per_yuan
        if points % step:
            fields["points_to_use"] = _("Points are used in steps of %(step)s.") % {"step": step}
        elif "amount" not in fields and Decimal(points) / step > payload.amount:
            fields["points_to_use"] = _("These points would pay more than the amount.")
    return fields


def _purchase_body(purchase: Purchase) -> dict[str, object]:
    body: dict[str, object] = {
        "purchase_id": purchase.pk,
        "points_earned": purchase.points_earned,
        "points_used": purchase.points_used,
    }
    # The member read again with their figures in one query: the purchase moved them.
    summary = _read_after_write(
        lambda: member_summary(member=member_get_for_summary(member_id=purchase.member_id))
    )
    if summary is None:
        return {**body, "balance": None, "tier": None}
    return {
        **body,
        "balance": {"available": summary.points.available, "pending": summary.points.pending},
        "tier": {
            "code": summary.tier.code,
            "name": summary.tier.name,
            "discount_rate": summary.tier.discount_rate,
            "valid_until": summary.tier.valid_until,
        },
    }


@router.post(
    "/purchases",
    response={200: PurchaseOut, 201: PurchaseOut, **ERRORS, 422: ErrorOut},
    summary="Record a purchase",
    description=(
        "Records a member's purchase at the token's store, spends any points used as "
        "payment and posts the points it earns.\n\n"
        "- `store` must be the API token's store (**403** `forbidden_store`); a code that is "
        "not an active store gives **400** `invalid`.\n"
        "- `occurred_at` is ISO 8601; without an offset it is Asia/Shanghai time. A time "
        "outside the years 1900 to 2999 gives **400** `invalid`.\n"
        f"- `occurred_at` may be at most {settings.POINTS_PURCHASE_MAX_DAYS_BACK} days back "
        f"and {settings.POINTS_PURCHASE_MAX_MINUTES_AHEAD} minutes ahead of the server's "
        "clock (settings `POINTS_PURCHASE_MAX_DAYS_BACK`, `POINTS_PURCHASE_MAX_MINUTES_AHEAD`): "
        "otherwise **422** `occurred_at_out_of_range`.\n"
        "- `amount` is in yuan with at most 2 decimals, at most "
        f"¥{settings.POINTS_PURCHASE_MAX_AMOUNT:,} (setting `POINTS_PURCHASE_MAX_AMOUNT`; more "
        "gives **422** `amount_over_limit`). `lines` are optional; when given, "
        "their amounts must add up to `amount` (**400** `invalid`). Each line has `sku`, "
        "`category`, `quantity` (default 1) and `amount`; at most 1,000 lines.\n"
        "- `channel` is `store` (default), `online`, `app` or `mini_program`.\n"
        "- `points_to_use` pays part of the amount with points (100 points = ¥1, in steps "
        "of 100): more than available gives **422** `insufficient_points`, a negative "
        "balance **422** `negative_balance`. Only the part paid with money earns points.\n"
        "- An unknown or closed member, or a member number with a wrong check digit, gives "
        "**404** `not_found`; a frozen member **422** `member_inactive`.\n"
        "- The same store + `receipt_no` again gives **200** with the first purchase's "
        "`purchase_id`, `points_earned` and `points_used`; `balance` and `tier` are always "
        "the member's current ones. The same receipt with different details gives **409** "
        "`idempotency_conflict`.\n\n"
        "Nothing is written when the response is an error."
    ),
)
def purchase_create(request: HttpRequest, payload: PurchaseIn):
    store = _store_or_error(request, payload.store)
    if isinstance(store, Status):
        return store
    if fields := _purchase_field_problems(payload):
        return Status(400, invalid_body(fields))
    # With the member's tier row: the plan's tier multiplier needs no query of its own.
    member = _member_or_404(payload.member_no, for_summary=True)
    if isinstance(member, Status):
        return member
    try:
        result = purchase_record(
            member=member,
            store=store,
            receipt_no=payload.receipt_no,
            occurred_at=_business_time(payload.occurred_at),
            amount=payload.amount,
            channel=payload.channel,
            lines=[
                LineInput(
                    sku=line.sku.strip(),
                    category=line.category.strip(),
                    # One spelling per quantity ("1", "1.0") so a retry has the same fingerprint.
                    quantity=line.quantity.quantize(QUANTITY_STEP),
                    amount=line.amount.quantize(CENT),
                )
                for line in payload.lines
            ],
            points_to_use=payload.points_to_use or 0,
        )
    except PointsError as exc:
        return _points_error_status(exc)
    return Status(201 if result.created else 200, _purchase_body(result.purchase))


# --- Returns ------------------------------------------------------------------------------


@router.post(
    "/returns",
    response={200: ReturnOut, 201: ReturnOut, **ERRORS, 422: ErrorOut},
    summary="Record a return",
    description=(
        "Records a (partial) return with its own `receipt_no` against the purchase "
        "`original_receipt_no`, and reverses that purchase's points in proportion to the "
        "amount returned, rounded down. Points that were already spent take the balance "
        "negative.\n\n"
        "- `store` must be the API token's store (**403** `forbidden_store`). The purchase is "
        "looked up at `original_store` (a store code, default: `store`). A return for a "
        "purchase at another store is audited; when the retailer does not accept those "
        "(setting `POINTS_CROSS_STORE_RETURNS` off) it gives **422** `cross_store_return`.\n"
        "- An unknown original receipt gives **404** `not_found`; returning more than is left "
        "of the purchase gives **422** `return_exceeds_purchase`; a return dated before the "
        "purchase **422** `return_before_purchase`.\n"
        "- The same store + `receipt_no` again gives **200** with the first return's "
        "`points_reversed` and the current balance; with different details **409** "
        "`idempotency_conflict`.\n\n"
        "Nothing is written when the response is an error."
    ),
)
def return_create(request: HttpRequest, payload: ReturnIn):
    store = _store_or_error(request, payload.store)
    if isinstance(store, Status):
        return store
    fields: dict[str, str] = {}
    if problem := _text_problem(payload.receipt_no, max_length=RECEIPT_MAX):
        fields["receipt_no"] = problem
    if problem := _text_problem(payload.original_receipt_no, max_length=RECEIPT_MAX):
        fields["original_receipt_no"] = problem
    if _business_time(payload.occurred_at) is None:
        fields["occurred_at"] = _business_time_problem()
    original_store = store
    if payload.original_store and payload.original_store.strip():
        original_store = store_get(code=payload.original_store.strip())
        if original_store is None:
            fields["original_store"] = _("There is no active store with this code.")
    if fields:
        return Status(400, invalid_body(fields))
    try:
        result = return_record(
            store=store,
            receipt_no=payload.receipt_no,
            original_receipt_no=payload.original_receipt_no,
            amount=payload.amount,
            occurred_at=_business_time(payload.occurred_at),
            original_store=original_store,
            actor_label=api_token_label(token=request.auth),
        )
    except PointsError as exc:
        return _points_error_status(exc)
    purchase_return = result.purchase_return
    body = {
        "points_reversed": purchase_return.points_reversed,
        "history": result.history,
        "message": result.history_message,
        "balance": _balance_body(lambda: purchase_return.purchase.member),
    }
    return Status(201 if result.created else 200, body)


# --- Balances -----------------------------------------------------------------------------


@router.get(
    "/members/{member_no}/points",
    response={200: PointsOut, 400: InvalidOut, 401: ErrorOut, 404: ErrorOut},
    summary="A member's points",
    description=(
        "`available` can be spent now (negative when returns reversed points that were "
        "already spent); `pending` becomes available later. `lifetime_earned` is every point "
        "earned minus what returns reversed. `expiring` lists every future expiry date "
        "(the last day the points can be used, `YYYY-MM-DD` in Asia/Shanghai) with the "
        "points that expire then, soonest first.\n\n"
        "An unknown or closed member gives **404** `not_found`."
    ),
)
def member_points(
    request: HttpRequest,
    member_no: PathEx[str, P(max_length=MEMBER_NO_MAX, pattern=NO_NUL)],
):
    # The account and the pending points come with the member: one query, and one for the
    # expiry dates.
    member = _member_or_404(member_no, for_summary=True)
    if isinstance(member, Status):
        return member
    balance = points_balance(member=member)
    account = account_get(member=member)
    return {
        "available": balance.available,
        "pending": balance.pending,
        "lifetime_earned": account.lifetime_earned if account is not None else 0,
        "expiring": [
            {"date": item.date, "points": item.points} for item in points_expiring(member=member)
        ],
    }


# --- Rewards and redemptions --------------------------------------------------------------


def _reward_body(reward: Reward) -> dict[str, object]:
    return {
        "code": reward.code,
        "kind": reward.kind,
        "name": _localised(reward.name_zh, reward.name_en),
        "description": _localised(reward.description_zh, reward.description_en),
        "points_price": reward.points_price,
        "amount_off": reward.amount_off,
        "percent_off": reward.percent_off,
        "min_spend": reward.min_spend,
        "stock": reward.stock,
        "per_member_limit": reward.per_member_limit,
        "min_tier_rank": reward.min_tier_rank,
        "available_until": (
            timezone.localtime(reward.available_until) if reward.available_until else None
        ),
    }


@router.get(
    "/rewards",
    response={200: list[RewardOut], 401: ErrorOut},
    summary="The rewards available now",
    description=(
        "The rewards catalogue as it is now, cheapest first. `name` and `description` follow "
        "`Accept-Language` (`zh-hans` by default, or `en`). `kind` is one of `amount_off`, "
        "`percent_off`, `spend_save` (满减: `min_spend` and `amount_off`), `gift`, `ticket`, "
        "`donation`. `stock` is null when unlimited, `per_member_limit` null when there is "
        "none; `min_tier_rank` is the lowest tier rank that may redeem (1 = regular). "
        "`points_price` is the full price; a tier may pay less."
    ),
)
def rewards_available(request: HttpRequest):
    return [_reward_body(reward) for reward in reward_list_available()]


@router.post(
    "/redemptions",
    response={200: RedemptionOut, 201: RedemptionOut, **ERRORS, 422: ErrorOut},
    summary="Redeem a reward for a member",
    description=(
        "Spends the member's points on a reward (by `reward` code) and issues its coupon.\n\n"
        "- `idempotency_key` is chosen by the caller (a UUID, say), at most 100 characters; "
        "keys are per store. The same key again gives **200** with the first redemption "
        "and its coupon, and the member's current balance; the same key for a different "
        "member or reward gives **409** `idempotency_conflict`.\n"
        "- **422** with `insufficient_points`, `negative_balance`, `out_of_stock`, "
        "`limit_reached`, `tier_required`, `reward_unavailable` (not active or outside its "
        "availability window) or `member_inactive` (a frozen member).\n"
        "- An unknown reward code, or an unknown or closed member, gives **404** "
        "`not_found`.\n\n"
        "Nothing is written when the response is an error."
    ),
)
def redemption_create(request: HttpRequest, payload: RedemptionIn):
    fields: dict[str, str] = {}
    if problem := _text_problem(payload.idempotency_key, max_length=IDEMPOTENCY_KEY_MAX):
        fields["idempotency_key"] = problem
    if not payload.reward.strip():
        fields["reward"] = _("This field is required.")
    if fields:
        return Status(400, invalid_body(fields))
    member = _member_or_404(payload.member_no)
    if isinstance(member, Status):
        return member
    reward = reward_get(code=payload.reward)
    if reward is None:
        return Status(404, error_body("not_found", _("There is no reward with this code.")))
    try:
        result = reward_redeem(
            member=member,
            reward=reward,
            # Per store, so two tills (or e-shops) that number their requests alike never
            # collide.
            idempotency_key=f"api:{request.auth.store.code}:{payload.idempotency_key.strip()}",
        )
    except PointsError as exc:
        return _points_error_status(exc)
    coupon = result.coupon
    body = {
        "redemption_id": result.redemption.pk,
        "coupon": None
        if coupon is None
        else {"code": coupon.code, "valid_until": timezone.localtime(coupon.valid_until)},
        "donation_receipt_no": result.redemption.donation_receipt_no if coupon is None else None,
        "points_spent": result.redemption.points_spent,
        "balance": _balance_body(lambda: member),
    }
    return Status(201 if result.created else 200, body)


# --- Coupons ------------------------------------------------------------------------------


@router.post(
    "/coupons/{code}/use",
    response={200: CouponUsedOut, **ERRORS, 422: ErrorOut},
    summary="Accept a coupon at the till",
    description=(
        "Marks the coupon used at the token's store (`store` must be the token's store, "
        "**403** `forbidden_store`), optionally on the sale's `receipt_no`. The answer says "
        "which reward it is, so the till can apply the discount. The code may be typed in "
        "any case, with spaces or dashes.\n\n"
        "- A coupon is used once: again gives **409** `coupon_used`.\n"
        "- **422** `coupon_expired` after its validity, **422** `coupon_void` when its "
        "redemption was cancelled, **422** `not_a_coupon` for a donation's receipt; an "
        "unknown code gives **404** `not_found`."
    ),
)
def coupon_accept(
    request: HttpRequest,
    code: PathEx[str, P(max_length=COUPON_CODE_MAX, pattern=NO_NUL)],
    payload: CouponUseIn,
):
    store = _store_or_error(request, payload.store)
    if isinstance(store, Status):
        return store
    if len(payload.receipt_no.strip()) > RECEIPT_MAX:
        return Status(400, invalid_body({"receipt_no": _("This value is too long.")}))
    try:
        coupon: Coupon = coupon_use(code=code, store=store, receipt_no=payload.receipt_no)
    except PointsError as exc:
        return _points_error_status(exc)
    reward = coupon.reward
    return {
        "status": "used",
        "code": coupon.code,
        "reward": {
            "code": reward.code,
            "kind": reward.kind,
            "name": _localised(reward.name_zh, reward.name_en),
            "amount_off": reward.amount_off,
            "percent_off": reward.percent_off,
            "min_spend": reward.min_spend,
        },
    }
