"""Ledger postings: the only code that writes entries, lots and balances.

Each function posts one `LedgerTransaction` and must run inside the caller's
`transaction.atomic()` with the member's account locked (`account_lock`), so that the
balance check, the lot consumption and the entries are one consistent step. Callers lock the
account before anything else and lots are always taken in (expires_at, id) order, so two
postings for one member queue up rather than deadlock.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Subquery, Sum
from django.utils import timezone

from core.jobs import on_connections
from members.models import Member, User

from .accounts import system_account
from .models import Account, Entry, LedgerTransaction, Lot, LotMovement
from .posting.plan import debt_split
from .posting.plan import expiry_for as plan_expiry_for

BUSINESS_TZ = ZoneInfo(settings.TIME_ZONE)


class PointsError(Exception):
    """A posting that the rules refuse; the message is fit to show."""

    code = "points_error"


class InsufficientPoints(PointsError):
    code = "insufficient_points"

    def __init__(self, *, needed: int, available: int) -> None:
        self.needed = needed
        self.available = available
        super().__init__(f"needs {needed} points, {available} available")


class PointsInDebt(PointsError):
    """A negative balance (points reversed after they were spent) blocks spending."""

    code = "negative_balance"

    def __init__(self, *, debt: int) -> None:
        self.debt = debt
        super().__init__(f"balance is negative by {debt} points")


class IdempotencyConflict(PointsError):
    code = "idempotency_conflict"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"{key} was already used for a different request")


def fingerprint(payload: dict[str, Any]) -> str:
    """A stable hash of a request, to tell a retry from a different request with the same key."""
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def expiry_for(earned_at: datetime.datetime) -> datetime.datetime:
    """The end of the 12th month after the month earned, Asia/Shanghai (`posting.plan`)."""
    return plan_expiry_for(earned_at)


def account_lock(*, member: Member) -> Account:
    """Lock (creating it if needed) the member's account; the first step of every posting."""
    account = Account.objects.select_for_update().filter(member=member).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            Account.objects.create(kind=Account.Kind.MEMBER, member=member)
    except IntegrityError:
        pass  # another request created it first; lock theirs
    return Account.objects.select_for_update().get(member=member)


def transaction_replayed(*, key: str, request_fingerprint: str) -> LedgerTransaction | None:
    """The earlier posting with this key, if any; a different request with it is refused.

    Call after `account_lock`: a concurrent first attempt has then either committed (we see
    it) or not started, so two retries can never both post.
    """
    existing = LedgerTransaction.objects.filter(idempotency_key=key).first()
    if existing is not None and existing.fingerprint != request_fingerprint:
        raise IdempotencyConflict(key)
    return existing


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int
    debt: int
    total: int


def balance_of(
    *, account: Account | None, at: datetime.datetime, pending: int | None = None
) -> Balance:
    """The account's balance at `at`; `pending`: the points still pending then, when the
    caller read them already (`pending_points_expression`)."""
    if account is None:
        return Balance(available=0, pending=0, debt=0, total=0)
    if pending is None:
        pending = (
            Lot.objects.pending(at=at)
            .filter(account=account)
            .aggregate(total=Sum("remaining"))["total"]
        )
    pending = pending or 0
    return Balance(
        available=account.balance - pending,
        pending=pending,
        debt=account.debt,
        total=account.balance,
    )


def pending_points_expression(*, at: datetime.datetime, account: Any) -> Subquery:
    """The points of `account` (an expression: `OuterRef(...)`) still pending at `at`, as a
    subquery, for a read that wants them with other rows (`balance_of(pending=...)`)."""
    return Subquery(
        Lot.objects.pending(at=at)
        .filter(account=account)
        .values("account")
        .annotate(total=Sum("remaining"))
        .values("total")
    )


def _post(
    *,
    account: Account,
    counter_account: Account,
    amount: int,
    kind: str,
    key: str,
    request_fingerprint: str,
    source: str,
    source_ref: str,
    reason: str,
    occurred_at: datetime.datetime,
    actor: User | None,
    reverses: LedgerTransaction | None = None,
) -> LedgerTransaction:
    txn = LedgerTransaction.objects.create(
        kind=kind,
        idempotency_key=key,
        fingerprint=request_fingerprint,
        source=source,
        source_ref=source_ref,
        reason=reason,
        occurred_at=occurred_at,
        actor=actor if actor is not None and actor.is_authenticated else None,
        member_id=account.member_id,
        member_amount=amount,
        reverses=reverses,
    )
    Entry.objects.bulk_create(
        [
            Entry(transaction=txn, account=account, amount=amount),
            Entry(transaction=txn, account=counter_account, amount=-amount),
        ]
    )
    return txn


def _credit(
    *,
    account: Account,
    txn: LedgerTransaction,
    points: int,
    earned_at,
    available_at,
    expires_at,
    counts_as_earned: bool,
) -> None:
    """Add points to a locked member account: pay any debt first, put the rest in a lot."""
    to_debt = debt_split(debt=account.debt, points=points)
    into_lot = points - to_debt
    if into_lot:
        Lot.objects.create(
            account=account,
            transaction=txn,
            points=into_lot,
            remaining=into_lot,
            earned_at=earned_at,
            available_at=available_at,
            expires_at=expires_at,
        )
    account.balance += points
    account.debt -= to_debt
    if counts_as_earned:
        account.lifetime_earned += points
    account.save(update_fields=["balance", "debt", "lifetime_earned", "updated_at"])


def _take_from_lots(*, lots: Iterable[Lot], txn: LedgerTransaction, points: int) -> int:
    """Consume up to `points` from the given (locked, ordered) lots; return what was taken."""
    taken = 0
    movements = []
    for lot in lots:
        if taken == points:
            break
        part = min(lot.remaining, points - taken)
        if part <= 0:
            continue
        lot.remaining -= part
        lot.save(update_fields=["remaining"])
        movements.append(LotMovement(lot=lot, transaction=txn, amount=-part))
        taken += part
    LotMovement.objects.bulk_create(movements)
    return taken


def _spendable_lots(*, account: Account, at: datetime.datetime):
    return (
        Lot.objects.spendable(at=at)
        .filter(account=account)
        .order_by("expires_at", "id")
        .select_for_update()
    )


def points_credit(
    *,
    account: Account,
    points: int,
    kind: str,
    counter_kind: str,
    key: str,
    request_fingerprint: str,
    source: str,
    source_ref: str = "",
    reason: str = "",
    occurred_at: datetime.datetime,
    available_at: datetime.datetime | None = None,
    expires_at: datetime.datetime | None = None,
    actor: User | None = None,
    counts_as_earned: bool = True,
    now: datetime.datetime | None = None,
) -> LedgerTransaction:
    """Post an earning (or a positive adjustment) to a locked account.

    An earning whose lot is past its expiry at `now` already (a backdated purchase) is
    expired in the same transaction: it never counts in the balance, not even until the
    nightly job.
    """
    if points <= 0:
        raise ValueError("a credit must be positive")
    expires_at = expires_at or expiry_for(occurred_at)
    txn = _post(
        account=account,
        counter_account=system_account(counter_kind),
        amount=points,
        kind=kind,
        key=key,
        request_fingerprint=request_fingerprint,
        source=source,
        source_ref=source_ref,
        reason=reason,
        occurred_at=occurred_at,
        actor=actor,
    )
    _credit(
        account=account,
        txn=txn,
        points=points,
        earned_at=occurred_at,
        available_at=available_at or occurred_at,
        expires_at=expires_at,
        counts_as_earned=counts_as_earned,
    )
    now = now or timezone.now()
    if expires_at <= now:
        lots_expire_overdue(account_ids=[account.pk], at=now)
        account.refresh_from_db(fields=["balance", "debt", "lifetime_earned", "updated_at"])
    return txn


def points_debit(
    *,
    account: Account,
    points: int,
    kind: str,
    counter_kind: str,
    key: str,
    request_fingerprint: str,
    source: str,
    source_ref: str = "",
    reason: str = "",
    occurred_at: datetime.datetime,
    now: datetime.datetime,
    actor: User | None = None,
) -> LedgerTransaction:
    """Spend points from a locked account, soonest-expiring available lots first.

    Refused while the account is in debt or when available points do not cover it.
    """
    if points <= 0:
        raise ValueError("a debit must be positive")
    if account.debt:
        raise PointsInDebt(debt=account.debt)
    lots = list(_spendable_lots(account=account, at=now))
    available = sum(lot.remaining for lot in lots)
    if available < points:
        raise InsufficientPoints(needed=points, available=available)
    txn = _post(
        account=account,
        counter_account=system_account(counter_kind),
        amount=-points,
        kind=kind,
        key=key,
        request_fingerprint=request_fingerprint,
        source=source,
        source_ref=source_ref,
        reason=reason,
        occurred_at=occurred_at,
        actor=actor,
    )
    _take_from_lots(lots=lots, txn=txn, points=points)
    account.balance -= points
    account.save(update_fields=["balance", "updated_at"])
    return txn


def points_reverse(
    *,
    account: Account,
    original: LedgerTransaction,
    points: int,
    key: str,
    request_fingerprint: str,
    source: str,
    source_ref: str = "",
    reason: str = "",
    occurred_at: datetime.datetime,
    actor: User | None = None,
) -> LedgerTransaction:
    """Take back part of an earning (a return): from its own lot first, then the member's other
    open lots, and whatever is still missing becomes debt (a negative balance).
    """
    if points <= 0:
        raise ValueError("a reversal must be positive")
    already = -sum(original.reversals.values_list("member_amount", flat=True))
    if already + points > original.member_amount:
        raise ValueError("cannot reverse more than was earned")
    txn = _post(
        account=account,
        counter_account=system_account(Account.Kind.REVERSAL),
        amount=-points,
        kind=LedgerTransaction.Kind.REVERSE,
        key=key,
        request_fingerprint=request_fingerprint,
        source=source,
        source_ref=source_ref,
        reason=reason,
        occurred_at=occurred_at,
        actor=actor,
        reverses=original,
    )
    own = list(Lot.objects.open().filter(transaction=original).select_for_update())
    taken = _take_from_lots(lots=own, txn=txn, points=points)
    if taken < points:
        others = Lot.objects.open().filter(account=account).exclude(transaction=original)
        taken += _take_from_lots(
            lots=others.order_by("expires_at", "id").select_for_update(),
            txn=txn,
            points=points - taken,
        )
    account.balance -= points
    account.debt += points - taken
    account.lifetime_earned -= points
    account.save(update_fields=["balance", "debt", "lifetime_earned", "updated_at"])
    return txn


def lots_expire_batch(*, account_ids: list[int], at: datetime.datetime) -> int:
    """Expire every lot of these accounts whose expiry is at or before `at`; set-based.

    One expiry transaction per account and expiry date (key `expire:<account>:<date>`), all
    written with bulk statements. The accounts are locked in id order first, as online
    postings lock theirs, so a redemption racing the job waits instead of spending a lot that
    is expiring. Returns the number of lots expired. Re-running finds nothing left to expire.
    """
    if connection.vendor == "postgresql":
        return lots_expire_batch_sql(account_ids=account_ids, at=at)
    return lots_expire_batch_orm(account_ids=account_ids, at=at)


class LedgerCheckFailed(Exception):
    """A set-based posting did not balance; its transaction is rolled back."""


# The whole batch in one statement: the due lots, one transaction per account and expiry
# date (ids drawn from the sequence, so entries and movements can point at them), its two
# entries, a movement per lot, the lots emptied and the balances lowered. The key, the
# fingerprint and the texts are those `lots_expire_batch_orm` writes.
_EXPIRE_SQL = """
WITH due AS MATERIALIZED (
    SELECT id, account_id, remaining, expires_at FROM points_lot
    WHERE account_id = ANY(%(accounts)s) AND remaining > 0 AND expires_at <= %(at)s
),
grouped AS MATERIALIZED (
    SELECT account_id, expires_at, points, first_lot, nextval(%(sequence)s::regclass) AS txn,
           to_char((expires_at AT TIME ZONE %(tz)s)::date - 1, 'YYYY-MM-DD') AS day
    FROM (SELECT account_id, expires_at, SUM(remaining) AS points, MIN(id) AS first_lot
          FROM due GROUP BY account_id, expires_at) AS totals
),
txns AS (
    INSERT INTO points_ledgertransaction (id, kind, idempotency_key, fingerprint, source,
        source_ref, reason, occurred_at, recorded_at, actor_id, member_id, member_amount,
        reverses_id)
    SELECT g.txn, %(kind)s, 'expire:' || g.account_id || ':' || g.day || ':' || g.first_lot,
           encode(sha256(convert_to(
               '{"account": ' || g.account_id || ', "day": "' || g.day || '"}', 'UTF8')), 'hex'),
           %(source)s, g.day, '', g.expires_at, %(now)s, NULL, a.member_id, -g.points, NULL
    FROM grouped AS g JOIN points_account AS a ON a.id = g.account_id
    RETURNING 1
),
entries AS (
    INSERT INTO points_entry (transaction_id, account_id, amount)
    SELECT txn, account_id, -points FROM grouped
    UNION ALL SELECT txn, %(expiry)s, points FROM grouped
    RETURNING transaction_id, amount
),
movements AS (
    INSERT INTO points_lotmovement (lot_id, transaction_id, amount)
    SELECT due.id, grouped.txn, -due.remaining FROM due JOIN grouped USING (account_id, expires_at)
    RETURNING 1
),
emptied AS (
    UPDATE points_lot SET remaining = 0 FROM due WHERE points_lot.id = due.id RETURNING 1
),
lowered AS (
    UPDATE points_account AS a SET balance = a.balance - t.points, updated_at = %(now)s
    FROM (SELECT account_id, SUM(points) AS points FROM grouped GROUP BY account_id) AS t
    WHERE a.id = t.account_id
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM emptied), (SELECT COUNT(*) FROM movements),
       (SELECT COUNT(*) FROM txns), (SELECT COUNT(*) FROM grouped),
       (SELECT COUNT(*) FROM (SELECT transaction_id FROM entries GROUP BY transaction_id
                              HAVING SUM(amount) <> 0) AS unbalanced)
"""


def lots_expire_batch_sql(*, account_ids: list[int], at: datetime.datetime) -> int:
    expiry_account = system_account(Account.Kind.EXPIRY)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM points_account WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [list(account_ids)],
        )
        cursor.execute("SET LOCAL jit = off")
        # The guards stay on: the sum-to-zero check is one statement-level trigger call over
        # this statement's entries (points migration 0025), the foreign keys are checked as
        # usual. The counts below check the statement's own work as well.
        cursor.execute(
            _EXPIRE_SQL,
            {
                "accounts": list(account_ids),
                "at": at,
                "now": timezone.now(),
                "tz": settings.TIME_ZONE,
                "sequence": _sequence_of(LedgerTransaction),
                "kind": LedgerTransaction.Kind.EXPIRE,
                "source": LedgerTransaction.Source.EXPIRY,
                "expiry": expiry_account.pk,
            },
        )
        lots, movements, txns, groups, unbalanced = cursor.fetchone()
        if unbalanced or lots != movements or txns != groups:
            raise LedgerCheckFailed(
                f"expiry batch: {lots} lots, {movements} movements, {txns}/{groups} "
                f"transactions, {unbalanced} unbalanced"
            )
    return lots


def _sequence_of(model) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
        return cursor.fetchone()[0]


def lots_expire_batch_orm(*, account_ids: list[int], at: datetime.datetime) -> int:
    with transaction.atomic():
        locked = list(Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk"))
        by_id = {account.pk: account for account in locked}
        lots = list(
            Lot.objects.select_for_update()
            .filter(account_id__in=by_id, remaining__gt=0, expires_at__lte=at)
            .order_by("account_id", "expires_at", "id")
        )
        if not lots:
            return 0
        groups: dict[tuple[int, datetime.datetime], list[Lot]] = {}
        for lot in lots:
            groups.setdefault((lot.account_id, lot.expires_at), []).append(lot)

        txns = []
        for (account_id, expires_at), group in groups.items():
            day = expires_at.astimezone(BUSINESS_TZ).date() - datetime.timedelta(days=1)
            points = sum(lot.remaining for lot in group)
            txns.append(
                LedgerTransaction(
                    kind=LedgerTransaction.Kind.EXPIRE,
                    # The first lot's id keeps the key unique when a backdated purchase
                    # adds a lot to a day whose expiry already ran.
                    idempotency_key=f"expire:{account_id}:{day.isoformat()}:{group[0].pk}",
                    fingerprint=fingerprint({"account": account_id, "day": day.isoformat()}),
                    source=LedgerTransaction.Source.EXPIRY,
                    source_ref=day.isoformat(),
                    occurred_at=expires_at,
                    member_id=by_id[account_id].member_id,
                    member_amount=-points,
                )
            )
        LedgerTransaction.objects.bulk_create(txns)
        expiry_account = system_account(Account.Kind.EXPIRY)
        entries, movements = [], []
        for txn, group in zip(txns, groups.values(), strict=True):
            points = -txn.member_amount
            account = by_id[group[0].account_id]
            account.balance -= points
            entries.append(Entry(transaction=txn, account=account, amount=-points))
            entries.append(Entry(transaction=txn, account=expiry_account, amount=points))
            movements.extend(
                LotMovement(lot=lot, transaction=txn, amount=-lot.remaining) for lot in group
            )
        Entry.objects.bulk_create(entries)
        LotMovement.objects.bulk_create(movements)
        Lot.objects.filter(pk__in=[lot.pk for lot in lots]).update(remaining=0)
        touched = {lot.account_id for lot in lots}
        Account.objects.bulk_update([by_id[pk] for pk in touched], ["balance"])
    return len(lots)


def lots_expire_overdue(*, account_ids: Iterable[int], at: datetime.datetime) -> int:
    """Expire, in the caller's transaction, every lot of these accounts past its expiry at
    `at`: what a backdated earning posts is expired as it is posted (as the nightly job would
    expire it, the same transactions), so balance = Σ entries = Σ open lots holds throughout
    and the lot never counts in the balance. Portable ORM statements, none of the expiry
    job's session settings. Returns the number of lots expired."""
    return lots_expire_batch_orm(account_ids=sorted(set(account_ids)), at=at)


def lots_expire(
    *,
    at: datetime.datetime,
    batch_size: int,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Expire every lot due by `at`, `batch_size` accounts per transaction; idempotent.

    The accounts with due lots are read once, in id order, and cut into batches; on
    PostgreSQL, outside a transaction, `workers` connections take batches in turn (no two
    batches share an account, so they never wait on each other). `progress(done, total)` is
    called from the calling thread after each batch, with the lots expired so far. A run cut
    short leaves whole batches done, and the next run finds only what is left.
    """
    due = Lot.objects.filter(remaining__gt=0, expires_at__lte=at)
    total = due.count()
    account_ids = list(due.order_by("account_id").values_list("account_id", flat=True).distinct())
    batches = [account_ids[i : i + batch_size] for i in range(0, len(account_ids), batch_size)]
    if progress:
        progress(0, total)
    expired = 0

    def batch_done(lots: int) -> None:
        nonlocal expired
        expired += lots
        if progress:
            progress(expired, total)

    on_connections(
        items=batches,
        work=lambda batch: lots_expire_batch(account_ids=batch, at=at),
        workers=workers,
        done=batch_done,
    )
    return expired


def points_refund(
    *,
    account: Account,
    original: LedgerTransaction,
    key: str,
    occurred_at: datetime.datetime,
    actor: User | None = None,
    reason: str = "refund",
) -> LedgerTransaction:
    """Give back what a spending transaction took (a voided redemption).

    Points go back into the lots they came from, so they keep their original expiry; a lot
    that has expired meanwhile does not come back to life — its share goes into a new lot
    that expires at the end of the current month. Any debt is paid first, as with earnings.
    """
    points = -original.member_amount
    if points <= 0:
        raise ValueError("only a spending transaction can be refunded")
    txn = _post(
        account=account,
        counter_account=system_account(Account.Kind.REDEMPTION),
        amount=points,
        kind=LedgerTransaction.Kind.REVERSE,
        key=key,
        request_fingerprint=fingerprint({"refund": original.pk}),
        source=original.source,
        source_ref=original.source_ref,
        reason=reason,
        occurred_at=occurred_at,
        actor=actor,
        reverses=original,
    )
    to_debt = debt_split(debt=account.debt, points=points)
    left = points - to_debt
    movements = []
    expired_share = 0
    taken = LotMovement.objects.filter(transaction=original, amount__lt=0).select_related("lot")
    for movement in taken.order_by("lot__expires_at", "lot_id"):
        if left == 0:
            break
        part = min(-movement.amount, left)
        left -= part
        lot = Lot.objects.select_for_update().get(pk=movement.lot_id)
        if lot.expires_at <= occurred_at:
            expired_share += part
        elif lot.account_id != account.pk:
            # The redemption moved with a member merge; the lot it came from stayed behind,
            # emptied. Its points come back on this account with the same expiry.
            new_lot = Lot.objects.create(
                account=account,
                transaction=txn,
                points=part,
                remaining=part,
                earned_at=lot.earned_at,
                available_at=lot.available_at,
                expires_at=lot.expires_at,
            )
            movements.append(LotMovement(lot=new_lot, transaction=txn, amount=part))
        else:
            lot.remaining += part
            lot.save(update_fields=["remaining"])
            movements.append(LotMovement(lot=lot, transaction=txn, amount=part))
    LotMovement.objects.bulk_create(movements)
    if expired_share:
        local = occurred_at.astimezone(BUSINESS_TZ)
        last_day = calendar.monthrange(local.year, local.month)[1]
        month_end = datetime.datetime(
            local.year, local.month, last_day, tzinfo=BUSINESS_TZ
        ) + datetime.timedelta(days=1)
        Lot.objects.create(
            account=account,
            transaction=txn,
            points=expired_share,
            remaining=expired_share,
            earned_at=occurred_at,
            available_at=occurred_at,
            expires_at=month_end,
        )
    account.balance += points
    account.debt -= to_debt
    account.save(update_fields=["balance", "debt", "updated_at"])
    return txn


def points_transfer(
    *,
    source: Account,
    target: Account,
    key: str,
    occurred_at: datetime.datetime,
    actor: User | None = None,
    reason: str = "",
) -> LedgerTransaction | None:
    """Move everything of one member account to another (a merge of duplicate members).

    Both accounts must be locked by the caller (lower id first). Each open lot moves as a new
    lot with the same dates, so the points keep their expiry; debt moves too and is settled
    against the target's lots at once. Returns None when there was nothing to move.
    """
    lots = list(
        Lot.objects.open().filter(account=source).order_by("expires_at", "id").select_for_update()
    )
    moved = source.balance
    if moved == 0 and not lots and source.debt == 0:
        return None
    txn = LedgerTransaction.objects.create(
        kind=LedgerTransaction.Kind.TRANSFER,
        idempotency_key=key,
        fingerprint=fingerprint({"from": source.pk, "to": target.pk}),
        source=LedgerTransaction.Source.MERGE,
        source_ref=str(target.member_id),
        reason=reason,
        occurred_at=occurred_at,
        actor=actor if actor is not None and actor.is_authenticated else None,
        member_id=source.member_id,
        member_amount=-moved,
    )
    if moved:
        Entry.objects.bulk_create(
            [
                Entry(transaction=txn, account=source, amount=-moved),
                Entry(transaction=txn, account=target, amount=moved),
            ]
        )
    movements = []
    for lot in lots:
        movements.append(LotMovement(lot=lot, transaction=txn, amount=-lot.remaining))
        new = Lot.objects.create(
            account=target,
            transaction=txn,
            points=lot.remaining,
            remaining=lot.remaining,
            earned_at=lot.earned_at,
            available_at=lot.available_at,
            expires_at=lot.expires_at,
        )
        movements.append(LotMovement(lot=new, transaction=txn, amount=lot.remaining))
    Lot.objects.filter(pk__in=[lot.pk for lot in lots]).update(remaining=0)
    LotMovement.objects.bulk_create(movements)

    target.balance += moved
    target.debt += source.debt
    target.lifetime_earned += source.lifetime_earned
    source.balance = 0
    source.debt = 0
    source.lifetime_earned = 0
    source.save(update_fields=["balance", "debt", "lifetime_earned", "updated_at"])
    if target.debt:
        # Debt is paid from the points the target holds, soonest-expiring first.
        open_lots = (
            Lot.objects.open()
            .filter(account=target)
            .order_by("expires_at", "id")
            .select_for_update()
        )
        target.debt -= _take_from_lots(lots=open_lots, txn=txn, points=target.debt)
    target.save(update_fields=["balance", "debt", "lifetime_earned", "updated_at"])
    return txn
