"""The COPY writer of a batch that moves no points: history purchases of an import.

A history purchase (planned with `history=True`) earns nothing and spends nothing, so the
one statement of `writers.PgStatement` writes only its purchase row and its lines; its
ledger parts (transaction, entries, lot, the accounts' figures) come out empty. For a
batch of such postings `postings_write` calls `postings_copy` instead, which stores exactly
the rows the statement stores — the same columns, the same values (those the plan decided,
as text in the same form), the purchases' ids drawn from their sequence in batch order and
the lines written in batch order — with two COPYs straight into the tables: no arrays to
parse, no statement to plan, no staging table (the ids are drawn first, so the lines can
point at their purchases). Foreign keys and every guard stay on: COPY fires them as an
INSERT does. `tests/points/test_posting_copy.py` compares the two writers row for row.

It decides nothing: a posting it cannot store as the statement would (points earned or
used) is not given to it (`copy_writable`).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from django.db import connection

from core.bulk import CopyLayout, copy_escape, copy_write, ids_draw

from ..models import Purchase, PurchaseLine
from .plan import PurchasePosting

# The columns each COPY fills, in the order of its lines (the purchase's id first).
PURCHASE_OWN = (
    "member_id",
    "store_id",
    "channel",
    "receipt_no",
    "occurred_at",
    "amount",
    "points_used",
    "eligible_amount",
    "points_earned",
    "returned_amount",
    "earn_transaction_id",
    "payment_transaction_id",
    "fingerprint",
    "recorded_by_id",
    "recorded_at",
    "history",
)
LINE_OWN = ("purchase_id", "sku", "category", "quantity", "amount")

_layouts: dict[str, tuple[CopyLayout, CopyLayout]] = {}


def copy_writable(batch: Sequence[PurchasePosting]) -> bool:
    """Whether `postings_copy` stores this batch as the statement would: more than one
    posting (a live purchase keeps its own path), none of them moving a point."""
    return len(batch) > 1 and all(p.history and not p.points and not p.points_used for p in batch)


def postings_copy(
    batch: Sequence[PurchasePosting], *, actor_id: int | None, now: datetime.datetime
) -> list[tuple[int, None]]:
    """Store a `copy_writable` batch: (purchase id, None — no earning transaction) each,
    in batch order. `now` stamps `recorded_at`, as the statement's `now` does."""
    layouts = _layouts.get(connection.alias)
    if layouts is None:
        layouts = _layouts[connection.alias] = (
            CopyLayout(Purchase, PURCHASE_OWN, with_id=True),
            CopyLayout(PurchaseLine, LINE_OWN, with_id=False),
        )
    purchases, lines = layouts
    ids = ids_draw(Purchase, len(batch))
    # The fixed part of every row: what the statement writes for a posting moving no
    # points (points used 0, earned 0, nothing returned, no transactions) and its stamps.
    actor = "\\N" if actor_id is None else str(actor_id)
    stamp = f"\t{actor}\t{now.isoformat()}\tt{purchases.tail}\n"
    copy_write(
        purchases.sql(),
        [
            f"{pk}\t{p.member_id}\t{p.store_id}\t{copy_escape(p.channel)}\t"
            f"{copy_escape(p.receipt_no)}\t{p.occurred_at.isoformat()}\t{p.amount}\t0\t"
            f"{p.eligible_amount}\t0\t0\t\\N\t\\N\t{copy_escape(p.fingerprint)}{stamp}"
            for pk, p in zip(ids, batch, strict=True)
        ],
    )
    copy_write(
        lines.sql(),
        [
            f"{pk}\t{copy_escape(line.sku)}\t{copy_escape(line.category)}\t{line.quantity}\t"
            f"{line.amount}{lines.tail}\n"
            for pk, p in zip(ids, batch, strict=True)
            for line in p.lines
        ],
    )
    return [(pk, None) for pk in ids]
