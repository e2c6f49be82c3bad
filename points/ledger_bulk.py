"""Set-based ledger postings: the batch twin of `ledger.points_credit`, for imports and loadgen.

`points_credit_bulk` posts many credits (earnings, opening balances) in a handful of
statements instead of a dozen queries each, and keeps every ledger invariant the one-by-one
path keeps:

- the batch's member accounts are created if missing, then locked in id order
  (SELECT … FOR UPDATE) — the same order `ledger.lots_expire_batch` uses, and a live posting
  only ever holds one member account, so the two queue up rather than deadlock;
- each credit is one `LedgerTransaction` (its idempotency key and fingerprint as given) with
  two `Entry` rows summing to zero (member +, counter account −);
- each credit pays the account's debt first and puts the rest in a `Lot`, exactly as
  `ledger._credit` does, so balance = Σ entries = Σ open lots − debt still holds;
- the member accounts' balance, debt and lifetime_earned move with ONE statement per batch,
  the counter (system) account with one more.

The caller holds the transaction and checks idempotency (that none of the keys exists) first.
On PostgreSQL the rows go in with COPY, transaction ids drawn from their sequence first so
entries, lots and the caller's purchases can point at them; elsewhere with bulk_create.
The purchase import derives its ledger rows server-side instead (`InsertLayout`,
`accounts_lock_rows`); the locking order and the checks are the same.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from core.bulk import (
    CopyLayout,
    copy_escape,
    copy_write,
    ids_draw,
    int_array,
    rows_update,
    use_copy,
)

from .accounts import system_account
from .models import Account, Entry, LedgerTransaction, Lot
from .posting.plan import debt_split


@dataclass(slots=True)
class BulkCredit:
    member_id: int
    points: int
    key: str
    fingerprint: str
    source: str
    source_ref: str
    occurred_at: datetime.datetime
    available_at: datetime.datetime
    expires_at: datetime.datetime
    kind: str = LedgerTransaction.Kind.EARN
    reason: str = ""
    counts_as_earned: bool = True


# The ledger transaction columns a posting writes itself (the rest take their defaults).
TXN_OWN = (
    "kind",
    "idempotency_key",
    "fingerprint",
    "source",
    "source_ref",
    "reason",
    "occurred_at",
    "recorded_at",
    "actor_id",
    "member_id",
    "member_amount",
)
ENTRY_OWN = ("transaction_id", "account_id", "amount")
LOT_OWN = (
    "account_id",
    "transaction_id",
    "points",
    "remaining",
    "earned_at",
    "available_at",
    "expires_at",
)


class _Layouts:
    _cache: dict[str, tuple[CopyLayout, CopyLayout, CopyLayout]] = {}

    @classmethod
    def get(cls) -> tuple[CopyLayout, CopyLayout, CopyLayout]:
        alias = connection.alias
        if alias not in cls._cache:
            cls._cache[alias] = (
                CopyLayout(LedgerTransaction, TXN_OWN, with_id=True),
                CopyLayout(Entry, ENTRY_OWN, with_id=False),
                CopyLayout(Lot, LOT_OWN, with_id=False),
            )
        return cls._cache[alias]


def accounts_lock(*, member_ids: Iterable[int]) -> dict[int, Account]:
    """Create the missing member accounts, then lock them all in id order; by member id."""
    rows = _accounts_lock_query(set(member_ids), columns=_ACCOUNT_COLUMNS)
    accounts = {}
    for pk, member_id, balance, debt, lifetime in rows:
        accounts[member_id] = Account(
            pk=pk,
            kind=Account.Kind.MEMBER,
            member_id=member_id,
            balance=balance,
            debt=debt,
            lifetime_earned=lifetime,
        )
    return accounts


def accounts_lock_rows(*, member_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """`accounts_lock` without the model objects: (account id, debt) by member id."""
    rows = _accounts_lock_query(set(member_ids), columns=("id", "member_id", "debt"))
    return {member_id: (pk, debt) for pk, member_id, debt in rows}


def _accounts_lock_query(wanted: set[int], *, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """`columns` (the first two: id, member_id) of these members' accounts, created where
    missing, all locked in id order."""
    if not wanted:
        return []
    rows = _accounts_query(wanted, lock=True, columns=columns)
    if len(rows) < len(wanted):
        missing = wanted - {row[1] for row in rows}
        # ignore_conflicts: a live posting may create one of them at the same moment. In
        # member order, so two writers creating overlapping accounts wait rather than deadlock.
        Account.objects.bulk_create(
            [
                Account(kind=Account.Kind.MEMBER, member_id=member_id)
                for member_id in sorted(missing)
            ],
            ignore_conflicts=True,
            batch_size=2000,
        )
        # Locked in id order, all of them again: the new ones may sit between the others.
        rows = _accounts_query(wanted, lock=True, columns=columns)
    return rows


_ACCOUNT_COLUMNS = ("id", "member_id", "balance", "debt", "lifetime_earned")


def _accounts_query(
    member_ids: set[int], *, lock: bool, columns: tuple[str, ...] = _ACCOUNT_COLUMNS
) -> list[tuple[Any, ...]]:
    if connection.vendor != "postgresql":
        query = Account.objects.filter(member_id__in=member_ids).order_by("pk")
        if lock:
            query = query.select_for_update()
        return list(query.values_list(*columns))
    # One array parameter, not thousands of placeholders.
    sql = (
        f"SELECT {', '.join(columns)} FROM {Account._meta.db_table} "  # noqa: S608
        "WHERE member_id = ANY(%s::bigint[]) ORDER BY id" + (" FOR UPDATE" if lock else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [int_array(member_ids)])
        return cursor.fetchall()


def accounts_save(accounts: Iterable[Account], *, now: datetime.datetime) -> None:
    """Write balance, debt and lifetime_earned of these (locked) accounts: one statement."""
    accounts = list(accounts)
    if not accounts:
        return
    if connection.vendor != "postgresql":
        for account in accounts:
            account.updated_at = now
        Account.objects.bulk_update(
            accounts, ["balance", "debt", "lifetime_earned", "updated_at"], batch_size=500
        )
        return
    rows_update(
        Account,
        key="id",
        columns=(
            ("id", "bigint"),
            ("balance", "bigint"),
            ("debt", "bigint"),
            ("lifetime_earned", "bigint"),
        ),
        rows=[(a.pk, a.balance, a.debt, a.lifetime_earned) for a in accounts],
        assign={"updated_at": "%s"},
        params=[now],
    )


class _Stamp:
    """isoformat() of datetimes, memoised: a batch repeats the same expiry and times a lot."""

    def __init__(self) -> None:
        self.cache: dict[datetime.datetime, str] = {}

    def __call__(self, value: datetime.datetime) -> str:
        text = self.cache.get(value)
        if text is None:
            if len(self.cache) > 100_000:
                self.cache.clear()
            text = self.cache[value] = value.isoformat()
        return text


class BulkCheckFailed(Exception):
    pass


def points_credit_bulk(
    *,
    credits: Sequence[BulkCredit],
    counter_kind: str,
    actor_id: int | None = None,
    now: datetime.datetime | None = None,
    accounts: dict[int, Account] | None = None,
) -> list[int]:
    """Post every credit; returns the new transaction ids, in the order of `credits`.

    Run inside the caller's transaction. `accounts` are the locked accounts by member id
    when the caller has locked them already (`accounts_lock`).
    """
    now = now or timezone.now()
    if not credits:
        return []
    if any(credit.points <= 0 for credit in credits):
        raise ValueError("a credit must be positive")
    if accounts is None:
        accounts = accounts_lock(member_ids={credit.member_id for credit in credits})
    counter = system_account(counter_kind)

    # Debt first, the rest into a lot: ledger._credit, in order within the batch.
    into_lots = []
    touched: dict[int, Account] = {}
    total = 0
    for credit in credits:
        account = accounts[credit.member_id]
        to_debt = debt_split(debt=account.debt, points=credit.points)
        into_lots.append(credit.points - to_debt)
        account.debt -= to_debt
        account.balance += credit.points
        if credit.counts_as_earned:
            account.lifetime_earned += credit.points
        touched[account.pk] = account
        total += credit.points

    if use_copy():
        txn_ids = _write_copy(
            credits=credits,
            into_lots=into_lots,
            accounts=accounts,
            counter=counter,
            actor_id=actor_id,
            now=now,
        )
    else:
        txn_ids = _write_orm(
            credits=credits,
            into_lots=into_lots,
            accounts=accounts,
            counter=counter,
            actor_id=actor_id,
            now=now,
        )
    accounts_save(touched.values(), now=now)
    return txn_ids


def _write_copy(
    *,
    credits: Sequence[BulkCredit],
    into_lots: list[int],
    accounts: dict[int, Account],
    counter: Account,
    actor_id: int | None,
    now: datetime.datetime,
) -> list[int]:
    txn_layout, entry_layout, lot_layout = _Layouts.get()
    ids = ids_draw(LedgerTransaction, len(credits))
    stamp = _Stamp()
    recorded = stamp(now)
    actor = str(actor_id) if actor_id else "\\N"
    counter_id = counter.pk
    txn_lines, entry_lines, lot_lines = [], [], []
    for pk, credit, into_lot in zip(ids, credits, into_lots, strict=True):
        account_id = accounts[credit.member_id].pk
        occurred = stamp(credit.occurred_at)
        points = credit.points
        txn_lines.append(
            f"{pk}\t{credit.kind}\t{copy_escape(credit.key)}\t{credit.fingerprint}\t"
            f"{credit.source}\t{copy_escape(credit.source_ref)}\t{copy_escape(credit.reason)}\t"
            f"{occurred}\t{recorded}\t{actor}\t{credit.member_id}\t{points}"
            f"{txn_layout.tail}\n"
        )
        entry_lines.append(
            f"{pk}\t{account_id}\t{points}{entry_layout.tail}\n"
            f"{pk}\t{counter_id}\t{-points}{entry_layout.tail}\n"
        )
        if into_lot:
            lot_lines.append(
                f"{account_id}\t{pk}\t{into_lot}\t{into_lot}\t{occurred}\t"
                f"{stamp(credit.available_at)}\t{stamp(credit.expires_at)}{lot_layout.tail}\n"
            )
    # Entries before their transactions (the foreign keys are checked at commit): each
    # transaction's two entries balance within the entries' statement, and every transaction
    # has its entries when it arrives, so the guards note nothing for the commit-time check
    # (transactions first noted every one of them, and that check took seconds a batch).
    copy_write(entry_layout.sql(), entry_lines)
    copy_write(txn_layout.sql(), txn_lines)
    copy_write(lot_layout.sql(), lot_lines)
    return ids


def _write_orm(
    *,
    credits: Sequence[BulkCredit],
    into_lots: list[int],
    accounts: dict[int, Account],
    counter: Account,
    actor_id: int | None,
    now: datetime.datetime,
) -> list[int]:
    txns = [
        LedgerTransaction(
            kind=credit.kind,
            idempotency_key=credit.key,
            fingerprint=credit.fingerprint,
            source=credit.source,
            source_ref=credit.source_ref,
            reason=credit.reason,
            occurred_at=credit.occurred_at,
            recorded_at=now,
            actor_id=actor_id,
            member_id=credit.member_id,
            member_amount=credit.points,
        )
        for credit in credits
    ]
    LedgerTransaction.objects.bulk_create(txns, batch_size=500)
    if any(txn.pk is None for txn in txns):  # a backend that cannot return ids
        ids = dict(
            LedgerTransaction.objects.filter(
                idempotency_key__in=[credit.key for credit in credits]
            ).values_list("idempotency_key", "id")
        )
        for txn in txns:
            txn.pk = ids[txn.idempotency_key]
    entries, lots = [], []
    for txn, credit, into_lot in zip(txns, credits, into_lots, strict=True):
        account_id = accounts[credit.member_id].pk
        entries.append(Entry(transaction_id=txn.pk, account_id=account_id, amount=credit.points))
        entries.append(Entry(transaction_id=txn.pk, account_id=counter.pk, amount=-credit.points))
        if into_lot:
            lots.append(
                Lot(
                    account_id=account_id,
                    transaction_id=txn.pk,
                    points=into_lot,
                    remaining=into_lot,
                    earned_at=credit.occurred_at,
                    available_at=credit.available_at,
                    expires_at=credit.expires_at,
                )
            )
    Entry.objects.bulk_create(entries, batch_size=1000)
    Lot.objects.bulk_create(lots, batch_size=1000)
    return [txn.pk for txn in txns]
