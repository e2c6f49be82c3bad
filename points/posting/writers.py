"""The writers of planned postings: one API, `postings_write`, for a batch of any size.

A live purchase is a batch of one; the CSV import posts thousands at a time. Both go
through the same steps, in one transaction (a savepoint inside the caller's):

1. lock the members' points accounts — the referrers' of first purchases too — creating
   the missing ones, in account id order (`ledger_bulk.accounts_lock_rows`), so every
   posting for a member queues behind the previous one;
2. check replay under those locks: a receipt recorded before with the same fingerprint
   answers 'replayed' (the first result), with another 'conflict'; then 'inactive' for a
   member who is not active (after the replay, so a till retrying a purchase made before
   the member was frozen still gets its answer);
3. spend the points used as payment (`ledger.points_debit`: soonest-expiring lots first,
   the ledger's one implementation);
4. split each earning between the member's debt and a new lot (`plan.debt_splits`, given
   the debt read under the lock);
5. write the ledger transactions, entries, lots, purchases, lines and the accounts'
   figures: on PostgreSQL with ONE set-based statement fed from arrays (`PgStatement`),
   a batch that moves no points (history) with COPY (`copy.postings_copy`, the same rows),
   elsewhere with the ORM (`_write_orm`); all store only what the plan decided;
6. count the qualifying activity and let tiers decide the immediate upgrades
   (`tiers.services`), pay the referral bonus of a first purchase (`rules`), write the
   cashier's audit entry, and expire at once a lot already past its expiry.

The ledger's guards (append-only entries, entries summing to zero, foreign keys) stay on
for every path: nothing here switches them off.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.bulk import InsertLayout, int_array, prepared_fetchall, text_array
from members.models import Member, User
from members.services import audit_log
from tiers.models import QualifyingActivity
from tiers.services import (
    tier_activities_record,
    tier_purchase_activity_record,
    tier_upgrades_check,
)

from ..ledger import lots_expire_overdue, points_debit, system_account
from ..ledger_bulk import ENTRY_OWN, LOT_OWN, TXN_OWN, accounts_lock_rows
from ..models import Account, Entry, LedgerTransaction, Lot, Purchase, PurchaseLine
from .copy import LINE_OWN, PURCHASE_OWN, copy_writable, postings_copy
from .plan import PurchasePosting, debt_splits

CREATED = "created"
REPLAYED = "replayed"
CONFLICT = "conflict"
INACTIVE = "inactive"


@dataclass(frozen=True)
class PostingOutcome:
    """What became of one posting: 'created', 'replayed' (the first posting of that
    receipt, with the same details), 'conflict' (the receipt was recorded with other
    details) or 'inactive' (the member is not active; nothing written)."""

    outcome: str
    purchase_id: int | None = None
    earn_transaction_id: int | None = None
    payment_transaction_id: int | None = None
    recorded_at: datetime.datetime | None = None


def postings_write(
    *,
    postings: Sequence[PurchasePosting],
    now: datetime.datetime,
    actor: User | None = None,
    upgrades: bool = True,
) -> list[PostingOutcome]:
    """Store a batch of planned postings; one outcome per posting, in order.

    `actor`: the signed-in person recording them (`recorded_by`, the ledger's actor and,
    for a posting planned `audited`, an audit entry). `now`: the time the postings are
    taken to happen at (the lots spendable then pay, a lot expired by then is expired at
    once); the rows are stamped with the clock. `upgrades`: let tiers upgrade the
    members at once (a live purchase); an import leaves that to the nightly evaluation.
    Raises what the ledger raises for points used as payment (`InsufficientPoints`,
    `PointsInDebt`), rolling the whole batch back.
    """
    if not postings:
        return []
    person = actor if actor is not None and actor.is_authenticated else None
    recorded_at = timezone.now()
    # A batch of one is a live purchase, inside `purchase_record`'s own block: no savepoint
    # of its own (two round trips less); a refusal there rolls back that block.
    with transaction.atomic(savepoint=len(postings) > 1):
        one = _write_one(postings, actor=person, now=recorded_at)
        if one is not None:
            answer, account_id = one
            if answer.outcome == CREATED:
                (posting,) = postings
                _after_write(
                    list(postings),
                    ids=[(answer.purchase_id, answer.earn_transaction_id)],
                    first=[False],
                    accounts={posting.member_id: (account_id, 0)},
                    actor=person,
                    upgrades=upgrades,
                    now=now,
                )
            return [answer]
        # History postings move no points: their members' accounts are neither locked nor
        # made (an import of a previous system's purchases runs at the speed of its rows).
        wanted = {p.member_id for p in postings if not p.history}
        wanted.update(p.referrer_id for p in postings if p.referrer_id and not p.history)
        locked = _lock_one(postings, wanted=wanted)
        if locked is not None:
            accounts, seen = locked
        else:
            accounts = accounts_lock_rows(member_ids=wanted)
            seen = _recorded(postings)
        outcomes: list[PostingOutcome | None] = [None] * len(postings)
        new: list[int] = []  # indexes of the postings to write
        for index, posting in enumerate(postings):
            earlier = seen.get((posting.store_id, posting.receipt_no))
            if earlier is not None:
                purchase_id, fingerprint = earlier
                same = fingerprint == posting.fingerprint
                outcomes[index] = PostingOutcome(
                    outcome=REPLAYED if same else CONFLICT, purchase_id=purchase_id
                )
                continue
            if not posting.member_active:
                outcomes[index] = PostingOutcome(outcome=INACTIVE)
                continue
            # A later row of the batch with this receipt is a replay of this one.
            seen[(posting.store_id, posting.receipt_no)] = (None, posting.fingerprint)
            new.append(index)
        batch = [postings[index] for index in new]
        if batch:
            payments = _payments(batch, accounts=accounts, actor=person, now=now)
            first = _first_purchases(batch)
            to_debt = debt_splits(
                postings=batch, debts={m: debt for m, (_pk, debt) in accounts.items()}
            )
            if statement_writer_used() and copy_writable(batch):
                # A batch that moves no points (history): the same rows, with COPY.
                ids = postings_copy(batch, actor_id=person.pk if person else None, now=recorded_at)
            elif statement_writer_used():
                ids = PgStatement.get().run(
                    batch,
                    accounts=accounts,
                    to_debt=to_debt,
                    payments=payments,
                    actor_id=person.pk if person else None,
                    now=recorded_at,
                )
            else:
                ids = _write_orm(
                    batch,
                    accounts=accounts,
                    to_debt=to_debt,
                    payments=payments,
                    actor_id=person.pk if person else None,
                    now=recorded_at,
                )
            for index, (purchase_id, txn_id), payment in zip(new, ids, payments, strict=True):
                outcomes[index] = PostingOutcome(
                    outcome=CREATED,
                    purchase_id=purchase_id,
                    earn_transaction_id=txn_id,
                    payment_transaction_id=payment,
                    recorded_at=recorded_at,
                )
            _after_write(
                batch,
                ids=ids,
                first=first,
                accounts=accounts,
                actor=person,
                upgrades=upgrades,
                now=now,
            )
    # Replays within the batch point at the purchase their first row created.
    created = {(postings[i].store_id, postings[i].receipt_no): outcomes[i].purchase_id for i in new}
    answers = []
    for posting, outcome in zip(postings, outcomes, strict=True):
        if outcome.outcome in (REPLAYED, CONFLICT) and outcome.purchase_id is None:
            outcome = PostingOutcome(
                outcome=outcome.outcome,
                purchase_id=created.get((posting.store_id, posting.receipt_no)),
            )
        answers.append(outcome)
    return answers


def statement_writer_used() -> bool:
    """Whether postings are written by the set-based statement (PostgreSQL, unless
    POINTS_PURCHASE_FAST_PATH is off) rather than the ORM writer (the reference)."""
    return connection.vendor == "postgresql" and settings.POINTS_PURCHASE_FAST_PATH


def _write_one(
    postings: Sequence[PurchasePosting], *, actor: User | None, now: datetime.datetime
) -> tuple[PostingOutcome, int | None] | None:
    """A live purchase on PostgreSQL in ONE round trip: the account locked, the receipt
    checked and the rows written by `PgStatement.run_one`. It applies to a purchase that
    spends no points and may pay no referral bonus, of an active member; the statement
    writes only when the member's account exists and owes no debt (the plan's figures are
    then the ones to store as they are). Created (with the account id), replayed or
    conflicting: the answer; None when the general steps must do it (nothing written, the
    account stays locked)."""
    if len(postings) != 1 or not statement_writer_used():
        return None
    (posting,) = postings
    if posting.history or not posting.member_active or posting.points_used or posting.referrer_id:
        return None
    rows = PgStatement.get().run_one(posting, actor_id=actor.pk if actor else None, now=now)
    if rows and rows[0][0] is not None:
        purchase_id, txn_id, account_id = rows[0][:3]
        created = PostingOutcome(
            outcome=CREATED, purchase_id=purchase_id, earn_transaction_id=txn_id, recorded_at=now
        )
        return created, account_id
    # Not written: the rows of `points_posting_lock`.
    for _purchase, _txn, _account, _member, _debt, purchase_id, fingerprint in rows:
        if purchase_id is not None:
            outcome = REPLAYED if fingerprint == posting.fingerprint else CONFLICT
            return PostingOutcome(outcome=outcome, purchase_id=purchase_id), None
    return None  # no account yet, or a debt to pay first


def _lock_one(
    postings: Sequence[PurchasePosting], *, wanted: set[int]
) -> tuple[dict[int, tuple[int, int]], dict[tuple[int, str], tuple[int, str]]] | None:
    """A live purchase (a batch of one) on PostgreSQL: the account locks and the replay
    check in one round trip (`points_posting_lock`, which decides nothing); the accounts
    as `accounts_lock_rows` gives them and the receipt as `_recorded` does. None when that
    does not apply or an account is missing (then the general steps make it)."""
    if len(postings) != 1 or not wanted or not statement_writer_used():
        return None
    (posting,) = postings
    rows = prepared_fetchall(
        "SELECT * FROM points_posting_lock(%s::bigint[], %s, %s)",
        [int_array(wanted), posting.store_id, posting.receipt_no],
    )
    accounts = {member_id: (pk, debt) for pk, member_id, debt, _p, _f in rows if pk is not None}
    if len(accounts) < len(wanted):
        return None
    seen = {}
    for pk, _member, _debt, purchase_id, fingerprint in rows:
        if pk is None:
            seen[(posting.store_id, posting.receipt_no)] = (purchase_id, fingerprint)
    return accounts, seen


def _recorded(postings: Sequence[PurchasePosting]) -> dict[tuple[int, str], tuple[int, str]]:
    """(store id, receipt) → (purchase id, fingerprint) of the batch's receipts recorded
    before; read under the account locks."""
    if len(postings) == 1:
        p = postings[0]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT store_id, receipt_no, id, fingerprint FROM {Purchase._meta.db_table} "  # noqa: S608
                "WHERE store_id = %s AND receipt_no = %s",
                [p.store_id, p.receipt_no],
            )
            rows = cursor.fetchall()
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT p.store_id, p.receipt_no, p.id, p.fingerprint "  # noqa: S608
                f"FROM {Purchase._meta.db_table} p "
                "JOIN unnest(%s::bigint[], %s::text[]) AS k(store_id, receipt_no) "
                "ON p.store_id = k.store_id AND p.receipt_no = k.receipt_no",
                [
                    int_array(p.store_id for p in postings),
                    text_array(p.receipt_no for p in postings),
                ],
            )
            rows = cursor.fetchall()
    else:
        wanted = {(p.store_id, p.receipt_no) for p in postings}
        rows = [
            row
            for row in Purchase.objects.filter(
                receipt_no__in={receipt for _store, receipt in wanted}
            ).values_list("store_id", "receipt_no", "id", "fingerprint")
            if (row[0], row[1]) in wanted
        ]
    return {(store_id, receipt): (pk, fp) for store_id, receipt, pk, fp in rows}


def _payments(
    batch: list[PurchasePosting],
    *,
    accounts: dict[int, tuple[int, int]],
    actor: User | None,
    now: datetime.datetime,
) -> list[int | None]:
    """Spend the points used as payment, before the earnings (as at the till); the payment
    transaction id of each posting, or None."""
    payments: list[int | None] = [None] * len(batch)
    for index, posting in enumerate(batch):
        if not posting.points_used:
            continue
        account = Account.objects.get(pk=accounts[posting.member_id][0])  # locked above
        txn = points_debit(
            account=account,
            points=posting.points_used,
            kind=LedgerTransaction.Kind.REDEEM,
            counter_kind=Account.Kind.REDEMPTION,
            key=posting.payment_key,
            request_fingerprint=posting.fingerprint,
            source=LedgerTransaction.Source.PAYMENT,
            source_ref=posting.receipt_no,
            occurred_at=posting.occurred_at,
            now=now,
            actor=actor,
        )
        payments[index] = txn.pk
    return payments


def _first_purchases(batch: list[PurchasePosting]) -> list[bool]:
    """Whether each posting with a referrer is its member's first purchase, under the lock
    (so two first purchases at once cannot both pay the referrer)."""
    asking = {p.member_id for p in batch if p.referrer_id}
    if not asking:
        return [False] * len(batch)
    bought = set(Purchase.objects.filter(member_id__in=asking).values_list("member_id", flat=True))
    first = []
    for posting in batch:
        is_first = bool(posting.referrer_id) and posting.member_id not in bought
        bought.add(posting.member_id)
        first.append(is_first)
    return first


def _after_write(
    batch: list[PurchasePosting],
    *,
    ids: list[tuple[int, int | None]],
    first: list[bool],
    accounts: dict[int, tuple[int, int]],
    actor: User | None,
    upgrades: bool,
    now: datetime.datetime,
) -> None:
    from ..rules import referral_bonus_post

    if len(batch) == 1:
        # A live purchase: the activity, the tier row's lock and the figures in one round
        # trip (tiers decides whether it upgrades).
        (posting,) = batch
        tier_purchase_activity_record(
            member_id=posting.member_id,
            occurred_at=posting.occurred_at,
            spend=posting.activity_spend,
            points=posting.activity_points,
            upgrade=upgrades,
            actor=actor,
        )
    else:
        tier_activities_record(
            activities=[
                (p.member_id, p.occurred_at, p.activity_spend, p.activity_points) for p in batch
            ],
            source=QualifyingActivity.Source.PURCHASE,
        )
        if upgrades:
            tier_upgrades_check(upgrades=[(p.member_id, p.occurred_at) for p in batch], actor=actor)
    for posting, is_first in zip(batch, first, strict=True):
        if is_first:
            members = Member.objects.in_bulk([posting.member_id, posting.referrer_id])
            referrer = members.get(posting.referrer_id)
            if referrer is not None and referrer.status == Member.Status.ACTIVE:
                referral_bonus_post(
                    referrer=referrer,
                    referee=members[posting.member_id],
                    occurred_at=posting.occurred_at,
                )
    if actor is not None:
        for posting, (purchase_id, _txn) in zip(batch, ids, strict=True):
            if posting.audit is not None:
                audit_log(
                    actor=actor,
                    action="purchase.record",
                    target=Purchase(pk=purchase_id),
                    member=Member(pk=posting.member_id),
                    details=dict(posting.audit),
                )
    # A lot already past its expiry (a purchase dated more than a year back) is expired in
    # this transaction: it never counts in the balance.
    overdue = {accounts[p.member_id][0] for p in batch if p.points and p.expires_at <= now}
    if overdue:
        lots_expire_overdue(account_ids=sorted(overdue), at=now)


# --- PostgreSQL: one statement ---------------------------------------------------------------

# The columns of a batch, one array parameter each: (name, SQL type).
_COLUMNS = (
    ("idx", "integer"),
    ("member_id", "bigint"),
    ("account_id", "bigint"),
    ("store_id", "bigint"),
    ("channel", "text"),
    ("receipt_no", "text"),
    ("occurred_at", "timestamptz"),
    ("available_at", "timestamptz"),
    ("expires_at", "timestamptz"),
    ("amount", "numeric"),
    ("eligible", "numeric"),
    ("points", "bigint"),
    ("into_lot", "bigint"),
    ("points_used", "bigint"),
    ("payment_txn_id", "bigint"),
    ("fingerprint", "text"),
    ("key", "text"),
    ("history", "boolean"),
)
_LINE_COLUMNS = (
    ("idx", "integer"),
    ("sku", "text"),
    ("category", "text"),
    ("quantity", "numeric"),
    ("amount", "numeric"),
)


def _array(values: list[Any], kind: str) -> str:
    """A PostgreSQL array literal of the values, for one `%s::<kind>[]` text parameter."""
    if kind == "text":
        if None not in values:
            return text_array(values)  # quotes only what needs quoting, in one join
        return "{" + ",".join(_quoted(v) for v in values) + "}"
    if kind == "timestamptz":
        # An ISO time holds no quote or backslash: quoted as it is.
        return (
            "{" + ",".join("NULL" if v is None else '"' + v.isoformat() + '"' for v in values) + "}"
        )
    if kind == "boolean":
        return "{" + ",".join("t" if v else "f" for v in values) + "}"
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def _quoted(value: Any) -> str:
    if value is None:
        return "NULL"
    text = value.isoformat() if isinstance(value, datetime.datetime) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PgStatement:
    """The one statement that writes a batch from arrays (the column of each in `_COLUMNS`),
    with the ids drawn from the sequences as the rows are read, so the tables link up."""

    _cache: dict[str, PgStatement] = {}

    @classmethod
    def get(cls) -> PgStatement:
        statement = cls._cache.get(connection.alias)
        if statement is None:
            # The issuance account exists from here on (its data migration makes it; a
            # database emptied since is covered by the statement's own insert).
            system_account(Account.Kind.ISSUANCE)
            statement = cls._cache[connection.alias] = cls()
        return statement

    def __init__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_serial_sequence(%s, 'id'), pg_get_serial_sequence(%s, 'id')",
                [Purchase._meta.db_table, LedgerTransaction._meta.db_table],
            )
            purchase_seq, txn_seq = cursor.fetchone()
        quote = connection.ops.quote_name
        txn = InsertLayout(LedgerTransaction, name="txn", own=("id", *TXN_OWN))
        entry = InsertLayout(Entry, ENTRY_OWN, name="entry")
        lot = InsertLayout(Lot, name="lot", own=LOT_OWN)
        purchase = InsertLayout(Purchase, name="purchase", own=("id", *PURCHASE_OWN))
        line = InsertLayout(PurchaseLine, LINE_OWN, name="line")
        account = quote(Account._meta.db_table)
        # The issuance account, the other side of every earning: created by the first
        # posting of a new database (as `ledger.system_account` would), found after that.
        counter = InsertLayout(Account, ("kind", "member_id"), name="counter")
        arrays = ", ".join(f"%({name})s::{kind}[]" for name, kind in _COLUMNS)
        names = ", ".join(name for name, _kind in _COLUMNS)
        # The one-purchase statement's rows: its account is the one it locked.
        locked_names = ", ".join(
            "gate.account_id" if name == "account_id" else f"u.{name}" for name, _kind in _COLUMNS
        )
        line_arrays = ", ".join(f"%(line_{name})s::{kind}[]" for name, kind in _LINE_COLUMNS)
        line_names = ", ".join(name for name, _kind in _LINE_COLUMNS)
        self.sql = f"""
WITH counter_new AS (
    INSERT INTO {counter.table} ({counter.columns})
    SELECT %(counter_kind)s, NULL{counter.tail}
    WHERE NOT EXISTS (
        SELECT 1 FROM {account} WHERE kind = %(counter_kind)s AND member_id IS NULL
    )
    ON CONFLICT DO NOTHING
    RETURNING id
), counter AS (
    SELECT id FROM {account} WHERE kind = %(counter_kind)s AND member_id IS NULL
    UNION ALL SELECT id FROM counter_new
), /*rows*/
), txn AS (
    INSERT INTO {txn.table} ({txn.columns})
    SELECT s.txn_id, %(kind)s, s.key, s.fingerprint, %(source)s, s.receipt_no, '',
           s.occurred_at, %(now)s, %(actor)s, s.member_id, s.points{txn.tail}
    FROM s WHERE s.points > 0
), entry AS (
    INSERT INTO {entry.table} ({entry.columns})
    SELECT s.txn_id, e.account_id, e.amount{entry.tail}
    FROM s
    -- A scalar: no issuance account (created meanwhile by another writer's statement,
    -- whose row this statement's snapshot does not see) fails the batch loudly (NOT NULL)
    -- rather than writing an earning without its entries.
    CROSS JOIN LATERAL (
        VALUES (s.account_id, s.points), ((SELECT id FROM counter LIMIT 1), -s.points)
    ) AS e(account_id, amount)
    WHERE s.points > 0
), lot AS (
    INSERT INTO {lot.table} ({lot.columns})
    SELECT s.account_id, s.txn_id, s.into_lot, s.into_lot, s.occurred_at, s.available_at,
           s.expires_at{lot.tail}
    FROM s WHERE s.into_lot > 0
), purchase AS (
    INSERT INTO {purchase.table} ({purchase.columns})
    SELECT s.purchase_id, s.member_id, s.store_id, s.channel, s.receipt_no, s.occurred_at,
           s.amount, s.points_used, s.eligible, s.points, 0, s.txn_id, s.payment_txn_id,
           s.fingerprint, %(actor)s, %(now)s, s.history{purchase.tail}
    FROM s
), line AS (
    INSERT INTO {line.table} ({line.columns})
    SELECT s.purchase_id, l.sku, l.category, l.quantity, l.amount{line.tail}
    FROM unnest({line_arrays}) WITH ORDINALITY AS l({line_names}, n)
    JOIN s ON s.idx = l.idx
    ORDER BY l.n
), account AS (
    UPDATE {account} AS a
    SET balance = a.balance + v.points, debt = a.debt - v.to_debt,
        lifetime_earned = a.lifetime_earned + v.points, updated_at = %(now)s
    FROM (
        SELECT account_id, SUM(points) AS points, SUM(points - into_lot) AS to_debt
        FROM s WHERE s.points > 0 GROUP BY account_id
    ) AS v
    WHERE a.id = v.account_id
)
/*answer*/
"""  # noqa: S608 - our own table and column names; every value is a parameter
        rows = f"unnest({arrays}) AS u({names})"
        nextvals = (
            f"nextval({_literal(purchase_seq)}::regclass) AS purchase_id, "
            f"CASE WHEN u.points > 0 THEN nextval({_literal(txn_seq)}::regclass) END AS txn_id"
        )
        template = self.sql
        self.sql = template.replace(
            "/*rows*/",
            f"s AS MATERIALIZED (SELECT u.*, {nextvals} FROM {rows}",  # noqa: S608
        ).replace("/*answer*/", "SELECT s.purchase_id, s.txn_id FROM s ORDER BY s.idx")
        # A live purchase (`_write_one`): `points_posting_lock` (a function of its own, so
        # the receipt is read with a snapshot taken after the lock) locks the account and
        # reads the receipt; the rows are written only if the account exists, owes nothing
        # and the receipt is new. Else it answers the function's rows, and nothing is written.
        self.sql_one = template.replace(
            "/*rows*/", _ONE_ROWS.format(names=locked_names, nextvals=nextvals, rows=rows)
        ).replace("/*answer*/", _ONE_ANSWER)
        self.params: dict[str, Any] = {
            "kind": LedgerTransaction.Kind.EARN,
            "source": LedgerTransaction.Source.PURCHASE,
            "counter_kind": Account.Kind.ISSUANCE,
        }
        for layout in (counter, txn, entry, lot, purchase, line):
            self.params.update(layout.params)

    def run(
        self,
        batch: list[PurchasePosting],
        *,
        accounts: dict[int, tuple[int, int]],
        to_debt: list[int],
        payments: list[int | None],
        actor_id: int | None,
        now: datetime.datetime,
    ) -> list[tuple[int, int | None]]:
        params = self._params(
            batch,
            accounts=accounts,
            to_debt=to_debt,
            payments=payments,
            actor_id=actor_id,
            now=now,
        )
        return prepared_fetchall(self.sql, params)

    def _params(
        self,
        batch: list[PurchasePosting],
        *,
        accounts: dict[int, tuple[int, int]],
        to_debt: list[int],
        payments: list[int | None],
        actor_id: int | None,
        now: datetime.datetime,
    ) -> dict[str, Any]:
        # Column by column: one list each, no per-row tuples. No account (a history
        # purchase, or the one the one-purchase statement locks itself): NULL.
        columns: dict[str, list[Any]] = {
            "idx": list(range(len(batch))),
            "member_id": [p.member_id for p in batch],
            "account_id": [
                None if p.history or p.member_id not in accounts else accounts[p.member_id][0]
                for p in batch
            ],
            "store_id": [p.store_id for p in batch],
            "channel": [p.channel for p in batch],
            "receipt_no": [p.receipt_no for p in batch],
            "occurred_at": [p.occurred_at for p in batch],
            "available_at": [p.available_at for p in batch],
            "expires_at": [p.expires_at for p in batch],
            "amount": [p.amount for p in batch],
            "eligible": [p.eligible_amount for p in batch],
            "points": [p.points for p in batch],
            "into_lot": [p.points - debt for p, debt in zip(batch, to_debt, strict=True)],
            "points_used": [p.points_used for p in batch],
            "payment_txn_id": payments,
            "fingerprint": [p.fingerprint for p in batch],
            "key": [p.key for p in batch],
            "history": [p.history for p in batch],
        }
        lines: dict[str, list[Any]] = {name: [] for name, _kind in _LINE_COLUMNS}
        for index, p in enumerate(batch):
            for line in p.lines:
                lines["idx"].append(index)
                lines["sku"].append(line.sku)
                lines["category"].append(line.category)
                lines["quantity"].append(line.quantity)
                lines["amount"].append(line.amount)
        params = {**self.params, "now": now, "actor": actor_id}
        for name, kind in _COLUMNS:
            params[name] = _array(columns[name], kind)
        for name, kind in _LINE_COLUMNS:
            params[f"line_{name}"] = _array(lines[name], kind)
        return params

    def run_one(
        self, posting: PurchasePosting, *, actor_id: int | None, now: datetime.datetime
    ) -> list[tuple[Any, ...]]:
        """`sql_one` for one purchase (see `_write_one`): (purchase id, transaction id,
        account id, …) when written, else the rows of `points_posting_lock`."""
        params = self._params(
            [posting], accounts={}, to_debt=[0], payments=[None], actor_id=actor_id, now=now
        )
        params["lock_members"] = int_array([posting.member_id])
        params["lock_store"] = posting.store_id
        params["lock_receipt"] = posting.receipt_no
        return prepared_fetchall(self.sql_one, params)


_ONE_ROWS = """locked AS MATERIALIZED (
    SELECT * FROM points_posting_lock(
        %(lock_members)s::bigint[], %(lock_store)s, %(lock_receipt)s
    )
), gate AS MATERIALIZED (
    SELECT COUNT(l.account_id) = 1 AND COUNT(l.purchase_id) = 0
               AND COALESCE(MAX(l.debt), 1) <= 0 AS go,
           MAX(l.account_id) AS account_id
    FROM locked l
), s AS MATERIALIZED (
    SELECT {names}, {nextvals}
    FROM {rows} CROSS JOIN gate WHERE gate.go"""
_ONE_ANSWER = """SELECT s.purchase_id, s.txn_id, s.account_id,
       NULL::bigint, NULL::bigint, NULL::bigint, NULL::text FROM s
UNION ALL
SELECT NULL, NULL, l.account_id, l.member_id, l.debt, l.purchase_id, l.fingerprint
FROM locked l WHERE NOT (SELECT go FROM gate)"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- Portable: the ORM ---------------------------------------------------------------------


def _write_orm(
    batch: list[PurchasePosting],
    *,
    accounts: dict[int, tuple[int, int]],
    to_debt: list[int],
    payments: list[int | None],
    actor_id: int | None,
    now: datetime.datetime,
) -> list[tuple[int, int | None]]:
    """The rows `PgStatement` writes, through the ORM (SQLite)."""
    counter = system_account(Account.Kind.ISSUANCE)
    earning = [index for index, p in enumerate(batch) if p.points > 0]
    txns = [
        LedgerTransaction(
            kind=LedgerTransaction.Kind.EARN,
            idempotency_key=batch[index].key,
            fingerprint=batch[index].fingerprint,
            source=LedgerTransaction.Source.PURCHASE,
            source_ref=batch[index].receipt_no,
            reason="",
            occurred_at=batch[index].occurred_at,
            recorded_at=now,
            actor_id=actor_id,
            member_id=batch[index].member_id,
            member_amount=batch[index].points,
        )
        for index in earning
    ]
    LedgerTransaction.objects.bulk_create(txns, batch_size=500)
    txn_of = {index: txn.pk for index, txn in zip(earning, txns, strict=True)}
    entries, lots = [], []
    moved: dict[int, list[int]] = {}  # account id → [points, to debt]
    for index, txn_pk in txn_of.items():
        p = batch[index]
        account_id = accounts[p.member_id][0]
        entries.append(Entry(transaction_id=txn_pk, account_id=account_id, amount=p.points))
        entries.append(Entry(transaction_id=txn_pk, account_id=counter.pk, amount=-p.points))
        into_lot = p.points - to_debt[index]
        if into_lot:
            lots.append(
                Lot(
                    account_id=account_id,
                    transaction_id=txn_pk,
                    points=into_lot,
                    remaining=into_lot,
                    earned_at=p.occurred_at,
                    available_at=p.available_at,
                    expires_at=p.expires_at,
                )
            )
        figures = moved.setdefault(account_id, [0, 0])
        figures[0] += p.points
        figures[1] += to_debt[index]
    Entry.objects.bulk_create(entries, batch_size=1000)
    Lot.objects.bulk_create(lots, batch_size=1000)
    purchases = [
        Purchase(
            member_id=p.member_id,
            store_id=p.store_id,
            channel=p.channel,
            receipt_no=p.receipt_no,
            occurred_at=p.occurred_at,
            amount=p.amount,
            points_used=p.points_used,
            eligible_amount=p.eligible_amount,
            points_earned=p.points,
            returned_amount=Decimal("0.00"),
            earn_transaction_id=txn_of.get(index),
            payment_transaction_id=payments[index],
            fingerprint=p.fingerprint,
            recorded_by_id=actor_id,
            recorded_at=now,
            history=p.history,
        )
        for index, p in enumerate(batch)
    ]
    Purchase.objects.bulk_create(purchases, batch_size=500)
    PurchaseLine.objects.bulk_create(
        [
            PurchaseLine(
                purchase_id=purchase.pk,
                sku=line.sku,
                category=line.category,
                quantity=line.quantity,
                amount=line.amount,
            )
            for purchase, p in zip(purchases, batch, strict=True)
            for line in p.lines
        ],
        batch_size=1000,
    )
    for account_id, (points, paid) in moved.items():
        Account.objects.filter(pk=account_id).update(
            balance=F("balance") + points,
            debt=F("debt") - paid,
            lifetime_earned=F("lifetime_earned") + points,
            updated_at=now,
        )
    return [(purchase.pk, txn_of.get(index)) for index, purchase in enumerate(purchases)]
