"""The PostgreSQL fast path of `services.purchase_record`: one statement per purchase.

The ORM path costs about 18 statements and 15 ms of CPU a purchase; this one computes the
points in Python with the ORM path's own functions (`earning.eligible_amount_at_rates`,
`promotion_multiplier`, `points_for`) and posts everything with one call of the database
function `points_purchase_post` (migration points/0015), in autocommit its own transaction.

What the points depend on — the earning policy, the category rates, the tier levels'
multipliers — is cached per process, and the function compares what was used with the
tables under the member's account lock: an edit by an administrator makes it answer 'stale'
without writing, the cache is read again and the call repeated. So the cache is never
trusted for more than saving a read, and no time-to-live is needed. The member's tier is not
known before the call, so Python sends the points for every level and the function takes the
member's.

It covers the plain purchase only: `purchase_fast_applies` says when. A tier upgrade the
purchase earns is written by the function too, as `tier_upgrade_check` writes it (its note
translated here), and the member is told after commit as that path tells them (a member
no channel reaches has nothing sent: the function settles that notice at once). The function
answers 'fallback' without writing for a referee's first purchase (the referrer is paid) or
a database without its issuance account; the caller then takes the ORM path.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.backends.postgresql.base import ServerBindingCursor
from django.utils.translation import get_language

from core.bulk import int_array
from members.models import Member, Store, User
from tiers.models import TierLevel, TierPolicy
from tiers.selectors import (
    QUALIFYING_MONTHS,
    business_date,
    months_before,
    tier_policy_get,
    validity_end,
)
from tiers.services import tier_notices_after_commit, tier_notices_due_now, upgrade_note

from .earning import (
    PurchaseContext,
    eligible_amount_at_rates,
    points_for,
    policy_get,
    promotion_multiplier,
    promotion_providers_active,
)
from .ledger import expiry_for
from .models import CategoryRate, EarningPolicy, Purchase

CENT = Decimal("0.01")

logger = logging.getLogger(__name__)

# Every argument cast to the function's type, so an empty or all-null array names its type.
_SQL = """
SELECT outcome, result_purchase_id, result_transaction_id, result_points,
    result_notify_history_id
FROM points_purchase_post(
    %s::bigint, %s::boolean, %s::boolean, %s::bigint, %s::text, %s::timestamptz, %s::numeric,
    %s::text, %s::text, %s::text, %s::timestamptz, %s::numeric, %s::timestamptz,
    %s::timestamptz, %s::timestamptz, %s::bigint, %s::numeric, %s::numeric, %s::integer,
    %s::boolean, %s::boolean, %s::text[], %s::numeric[], %s::bigint[], %s::numeric[],
    %s::bigint[], %s::text[], %s::text[], %s::numeric[], %s::numeric[], %s::bigint,
    %s::integer, %s::date, %s::text, %s::boolean
)
"""


# The error the function raises to take back what it wrote, its answer as the message.
_TAKEN_BACK = "LY001"
_UNDEFINED_FUNCTION = "42883"


@dataclass(frozen=True)
class EarningInputs:
    """What the points of a purchase depend on, as read from the tables at one time."""

    policy: EarningPolicy
    tier_policy: TierPolicy
    rates: dict[str, Decimal]
    # (level id, earn multiplier), lowest rank first.
    levels: tuple[tuple[int, Decimal], ...]
    # The levels as PostgreSQL array literals: one text parameter each, not a list that
    # psycopg adapts element by element on every call.
    level_ids: str
    level_multipliers: str


_inputs: EarningInputs | None = None


def earning_inputs(*, reload: bool = False) -> EarningInputs:
    global _inputs
    if _inputs is None or reload:
        levels = tuple(TierLevel.objects.order_by("rank").values_list("pk", "earn_multiplier"))
        _inputs = EarningInputs(
            policy=policy_get(),
            tier_policy=tier_policy_get(),
            rates=dict(CategoryRate.objects.values_list("category", "rate")),
            levels=levels,
            level_ids=int_array(pk for pk, _multiplier in levels),
            level_multipliers="{" + ",".join(str(m) for _pk, m in levels) + "}",
        )
    return _inputs


def purchase_fast_applies(*, points_to_use: int, actor: User | None) -> bool:
    """Whether a purchase may take the fast path; the function may still send it back.

    Not for points used as payment (lots to consume), a signed-in actor (audit log and
    `recorded_by`), campaign promotions (read per purchase in Python, not checkable in the
    database), nor outside PostgreSQL.
    """
    return (
        connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
        and settings.POINTS_PURCHASE_FAST_PATH
        and points_to_use == 0
        and not (actor is not None and actor.is_authenticated)
        and not promotion_providers_active()
    )


@dataclass(frozen=True)
class FastPosting:
    """'created', 'replayed', 'conflict' or 'inactive' (the caller raises for the last two)."""

    outcome: str
    purchase: Purchase | None


def purchase_post_fast(
    *,
    member: Member,
    store: Store,
    receipt_no: str,
    occurred_at: datetime.datetime,
    amount: Decimal,
    channel: str,
    lines: list | tuple,
    request_fingerprint: str,
    key: str,
    now: datetime.datetime,
) -> FastPosting | None:
    """Post a plain purchase with one statement; None when the ORM path must post it."""
    # The wrapper itself: `django.db.connection` looks it up again on every attribute.
    db = connections[DEFAULT_DB_ALIAS]
    line_pairs = [(line.category, line.amount) for line in lines]
    categories = sorted({line.category for line in lines})
    if lines:
        line_arrays = [
            [line.sku for line in lines],
            [line.category for line in lines],
            [line.quantity for line in lines],
            [line.amount for line in lines],
        ]
    else:
        line_arrays = ["{}"] * 4
    context = PurchaseContext(
        member=member,
        store_code=store.code,
        channel=channel,
        occurred_at=occurred_at,
        categories=frozenset(categories),
    )
    window_start = months_before(occurred_at, QUALIFYING_MONTHS)
    first_day = business_date(occurred_at)
    note = _upgrade_note()
    reload = False
    for _attempt in range(3):
        inputs = earning_inputs(reload=reload)
        if not inputs.levels:
            return None
        policy = inputs.policy
        eligible = eligible_amount_at_rates(
            amount=amount, lines=line_pairs, rates=inputs.rates, base_rate=policy.base_rate
        )
        promo = promotion_multiplier(context=context, policy=policy)
        # As `multiplier_for`: the tier's multiplier times the promotions'.
        level_points = [
            points_for(eligible=eligible, multiplier=multiplier * promo, policy=policy)
            for _pk, multiplier in inputs.levels
        ]
        stored_eligible = eligible.quantize(CENT, rounding=ROUND_FLOOR)
        params = [
            member.pk,
            member.status == Member.Status.ACTIVE,
            member.referrer_id is not None,
            store.pk,
            receipt_no,
            occurred_at,
            amount,
            channel,
            request_fingerprint,
            key,
            now,
            stored_eligible,
            occurred_at + datetime.timedelta(days=policy.pending_days),
            expiry_for(occurred_at),
            window_start,
            policy.pk,
            policy.base_rate,
            policy.birthday_multiplier,
            policy.pending_days,
            policy.promotions_stack,
            bool(policy.referral_bonus and policy.referral_cap_per_year),
            categories if categories else "{}",
            [inputs.rates.get(category) for category in categories] if categories else "{}",
            inputs.level_ids,
            inputs.level_multipliers,
            int_array(level_points),
            *line_arrays,
            inputs.tier_policy.pk,
            inputs.tier_policy.valid_months,
            # Of a tier reached with this purchase, as `tier_upgrade_check` has it.
            validity_end(first_day=first_day, months=inputs.tier_policy.valid_months),
            note,
            # Settled in the function only when its statement is the transaction: inside
            # the caller's, the notice waits for its commit, as `tier_upgrade_check`'s does.
            tier_notices_due_now() and not db.in_atomic_block,
        ]
        try:
            # In autocommit the statement is its own transaction: one round trip.
            execute = _execute_in_savepoint if db.in_atomic_block else _execute
            row = execute(db, params)
            outcome, purchase_id, transaction_id, points, history_id = row
        except DatabaseError as error:
            sqlstate = getattr(error.__cause__, "sqlstate", None)
            if sqlstate == _UNDEFINED_FUNCTION:
                # Code deployed before its migration, or the migration reversed: the ORM
                # path posts the same rows, only slower.
                logger.warning("points_purchase_post is missing: run `manage.py migrate`")
                return None
            if sqlstate != _TAKEN_BACK:
                raise
            # A refusal for a member whose account the call created, and took back; or
            # 'retry', a first tier row written meanwhile by the nightly job.
            outcome, purchase_id = error.__cause__.diag.message_primary, None
            transaction_id, points, history_id = None, 0, None
        if outcome == "stale":
            reload = True
            continue
        if outcome == "retry":
            continue
        if outcome == "fallback":
            return None
        if outcome == "created":
            if history_id is not None:
                tier_notices_after_commit(history_ids=[history_id])
            # The row as written, built as a query would build it (a third of the time of
            # keyword arguments), with the member and store objects the caller gave.
            values = {
                "id": purchase_id,
                "member_id": member.pk,
                "store_id": store.pk,
                "channel": channel,
                "receipt_no": receipt_no,
                "occurred_at": occurred_at,
                "amount": amount,
                "points_used": 0,
                "eligible_amount": stored_eligible,
                "points_earned": points,
                "returned_amount": Decimal("0.00"),
                "earn_transaction_id": transaction_id,
                "payment_transaction_id": None,
                "fingerprint": request_fingerprint,
                "recorded_by_id": None,
                "recorded_at": now,
                "history": False,
            }
            purchase = Purchase.from_db(
                db.alias, _PURCHASE_COLUMNS, [values[c] for c in _PURCHASE_COLUMNS]
            )
            Purchase.member.field.set_cached_value(purchase, member)
            Purchase.store.field.set_cached_value(purchase, store)
            return FastPosting(outcome=outcome, purchase=purchase)
        if outcome == "replayed":
            return FastPosting(outcome=outcome, purchase=Purchase.objects.get(pk=purchase_id))
        return FastPosting(outcome=outcome, purchase=None)
    return None


class _NotPosted(Exception):
    """Carries an answer other than 'created' out of its savepoint, rolling it back."""

    def __init__(self, row: tuple) -> None:
        self.row = row


def _execute_in_savepoint(db, params: list) -> tuple:
    """The call inside a caller's transaction, in a savepoint as the ORM path's atomic()
    block: a failure (a receipt taken by another member meanwhile) leaves the caller's
    transaction usable. Any answer but 'created' rolls the savepoint back, so the account
    lock it took ends with it, as the ORM path's ends when its refusal leaves the block:
    held on, the ORM path's referral posting would lock the referrer after the member,
    against the member-id order every other posting keeps."""
    try:
        with transaction.atomic(using=db.alias):
            row = _execute(db, params)
            if row[0] != "created":
                raise _NotPosted(row)
    except _NotPosted as answer:
        return answer.row
    return row


def _execute(db, params: list) -> tuple:
    # A cursor that binds on the server, unlike Django's default (client-side binding): the
    # 35 values go as parameters instead of being quoted into the text in Python, a third
    # of the Python time of the call. Wrapped as Django wraps its own cursors, so the
    # query is logged and counted like any other.
    db.close_if_health_check_failed()
    db.ensure_connection()
    raw = ServerBindingCursor(db.connection)
    cursor = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
    with cursor:
        cursor.execute(_SQL, params)
        return cursor.fetchone()


def _upgrade_note() -> str:
    """`tier_upgrade_check`'s history note in the active language, with its figures left as
    \\x01 (spend) and \\x02 (points) for the function to fill in."""
    language = get_language()
    note = _notes.get(language)
    if note is None:
        note = _notes[language] = upgrade_note(spend="\x01", points="\x02")
    return note


_notes: dict[str | None, str] = {}

_PURCHASE_COLUMNS = [field.attname for field in Purchase._meta.concrete_fields]
