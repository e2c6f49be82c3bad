"""CSV imports for points: purchases from the tills' history, opening balances from an old system.

Same design as the member import (members/imports.py): `points_import_start` checks the file
as a whole (UTF-8, header, at least one row) and records it, `points_import_run` does the
rows in batches of `BATCH_SIZE` — each batch one transaction that writes the good rows, the
bad rows' errors and the progress counters — and one audit entry is written for the run.

Purchases (`store, receipt_no, member_no|phone, occurred_at, amount, channel?, category?,
sku?`) are idempotent by store + receipt number: a receipt already recorded with the same
details (the same fingerprint `purchase_record` computes) counts as "already imported", with
other details it is a bad row. Points are posted set-based (`ledger_bulk.points_credit_bulk`),
with the policy's earning: base rate, category rate (a row's category is its one line) and
the multiplier of `earning.multiplier_for`, as at the till. Simplifications, on purpose:

- the multiplier is computed once per member and month of purchase in the run when no
  promotion provider is registered (then only the tier and the birthday month matter, and
  the tier is the member's current one, as at the till); with promotions it is per row;
- no referral bonus: the history of an old system is not a referee's first purchase here;
- no points used as payment: the file carries what was paid, not how.

Opening balances (`source_id, member_no|phone, points, expires_on, earned_on?`) are
idempotent by source_id (ledger key `import:balance:<source_id>`). Each is one earning
transaction (source IMPORT, counter account issuance) and one lot that expires at the end of
`expires_on` (Beijing time, stored as the next midnight like `ledger.expiry_for`). They count
as earned (lifetime_earned): they are points the member earned, in the old system; the tiers
app can leave out source=import when it counts points earned in the last 12 months.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from operator import itemgetter
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.imports import (
    _decode,
    _members_matching,
    _parse_date,
    _parse_datetime,
    _records,
    import_phone_normalize,
)
from members.models import Member, Store, User
from members.numbers import InvalidPhone
from members.services import MemberError, audit_log

from . import earning
from .earning import PurchaseContext, multiplier_for, policy_get
from .ledger import BUSINESS_TZ
from .ledger_bulk import (
    BulkCredit,
    CopyLayout,
    accounts_lock,
    bulk_checks_begin,
    bulk_checks_end,
    copy_escape,
    copy_write,
    ids_draw,
    points_credit_bulk,
    use_copy,
)
from .models import (
    Account,
    CategoryRate,
    LedgerTransaction,
    PointsImport,
    PointsImportError,
    Purchase,
    PurchaseLine,
)
from .services import CENT, LineInput, _purchase_fingerprint

BATCH_SIZE = 5000
MAX_ERRORS_SHOWN = 500
MAX_POINTS = 100_000_000

_MEMBER_HELP = _("Member number; or leave it blank and give phone.")
_PHONE_HELP = _("Mobile phone of the member, used when member_no is blank.")

PURCHASE_COLUMNS: tuple[tuple[str, bool, Any], ...] = (
    ("store", True, _("Store code, e.g. SH001.")),
    ("receipt_no", True, _("Receipt number, unique per store; re-importing skips it.")),
    ("member_no", False, _MEMBER_HELP),
    ("phone", False, _PHONE_HELP),
    (
        "occurred_at",
        True,
        _("Time of purchase: an ISO date and time (Beijing time unless an offset is given)."),
    ),
    ("amount", True, _("Amount paid in yuan, e.g. 128.50.")),
    ("channel", False, _("store, online, app or mini_program. Blank: store.")),
    ("category", False, _("Product category; special-rate and excluded categories apply.")),
    ("sku", False, _("SKU of the item.")),
)
BALANCE_COLUMNS: tuple[tuple[str, bool, Any], ...] = (
    ("source_id", True, _("The balance's id in the previous system; re-importing skips it.")),
    ("member_no", False, _MEMBER_HELP),
    ("phone", False, _PHONE_HELP),
    ("points", True, _("Points, a whole number above 0.")),
    ("expires_on", True, _("Last day the points can be used, YYYY-MM-DD, in the future.")),
    ("earned_on", False, _("Day the points were earned, YYYY-MM-DD. Blank: the import day.")),
)
COLUMNS = {
    PointsImport.Kind.PURCHASES: PURCHASE_COLUMNS,
    PointsImport.Kind.BALANCES: BALANCE_COLUMNS,
}

RECEIPT_MAX = Purchase._meta.get_field("receipt_no").max_length
SKU_MAX = PurchaseLine._meta.get_field("sku").max_length
CATEGORY_MAX = PurchaseLine._meta.get_field("category").max_length
SOURCE_ID_MAX = 100
BALANCE_KEY = "import:balance:{}"

MESSAGES: dict[str, Any] = {
    "field_count": _("The line has %(found)s fields but the header has %(expected)s."),
    "required": _("%(name)s is missing."),
    "too_long": _("%(name)s is longer than %(max)s characters."),
    "store_unknown": _("There is no store with the code “%(value)s”."),
    "member_required": _("Give member_no or phone."),
    "member_unknown": _("There is no member with the number “%(value)s”."),
    "phone_invalid": _("“%(value)s” is not a valid mobile phone number."),
    "phone_unknown": _("No member has the phone number %(value)s."),
    "member_inactive": _("Member %(member_no)s is not active."),
    "datetime_invalid": _("“%(value)s” is not a date (YYYY-MM-DD) or ISO date and time."),
    "date_invalid": _("“%(value)s” is not a date in the form YYYY-MM-DD."),
    "occurred_at_future": _("The time of purchase %(value)s is in the future."),
    "amount_invalid": _("“%(value)s” is not an amount above 0 with at most 2 decimals."),
    "channel_invalid": _("“%(value)s” is not a channel: use store, online, app or mini_program."),
    "receipt_duplicate": _("The same store and receipt number are on line %(line)s."),
    "receipt_conflict": _(
        "Receipt %(value)s of this store was already recorded with other details."
    ),
    "points_invalid": _("“%(value)s” is not a whole number of points above 0."),
    "expires_on_past": _("The points would expire on %(value)s, which is not in the future."),
    "earned_on_future": _("The day earned %(value)s is in the future."),
    "source_id_duplicate": _("The same source_id is on line %(line)s."),
    "balance_conflict": _("source_id %(value)s was already imported with other details."),
}


class ImportFileError(MemberError):
    """The file as a whole cannot be imported (not UTF-8 text, no header, no rows)."""


@dataclass(frozen=True)
class ImportProgress:
    processed: int
    total: int
    created: int
    existing: int
    bad: int
    points: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[ImportProgress], None]


# --- Reading the file -------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    positions: dict[str, int]
    width: int
    columns: list[str]
    ignored: list[str]


def _header(fields: list[str], kind: str) -> _Header:
    spec = COLUMNS[kind]
    names = [name for name, _required, _help in spec]
    columns = [name.strip().lower() for name in fields]
    positions: dict[str, int] = {}
    for index, name in enumerate(columns):
        if name in names and name not in positions:
            positions[name] = index
    required = [name for name, needed, _help in spec if needed]
    missing = [name for name in required if name not in positions]
    if "member_no" not in positions and "phone" not in positions:
        missing.append("member_no / phone")
    if missing:
        raise ImportFileError(
            gettext(
                "The first line must be a header naming the columns; %(missing)s missing. "
                "Required columns: %(required)s."
            )
            % {
                "missing": ", ".join(missing),
                "required": ", ".join([*required, "member_no / phone"]),
            }
        )
    ignored = [name for index, name in enumerate(columns) if positions.get(name) != index]
    return _Header(positions=positions, width=len(fields), columns=columns, ignored=ignored)


def _read_file(content: bytes, kind: str) -> tuple[_Header, Iterator[tuple[int, list[str]]]]:
    try:
        text = _decode(content)
    except MemberError as exc:
        raise ImportFileError(str(exc)) from None
    records = _records(text)
    try:
        first = next(records)
    except csv.Error:
        raise ImportFileError(gettext("This is not a CSV file.")) from None
    except StopIteration:
        raise ImportFileError(gettext("The file is empty.")) from None
    return _header(first[1], kind), records


# --- Rows -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    line: int
    ref: str
    member_no: str = ""
    phone: str = ""
    errors: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    # Resolved against the database, per batch.
    member_id: int = 0
    member_ref: Any = None  # (id, member_no, birthday, status)
    fingerprint: str = ""
    # Purchases
    store_id: int = 0
    store_code: str = ""
    occurred_at: datetime.datetime | None = None
    amount: Decimal = Decimal(0)
    channel: str = Purchase.Channel.STORE
    category: str = ""
    sku: str = ""
    # Opening balances
    points: int = 0
    earned_at: datetime.datetime | None = None
    expires_at: datetime.datetime | None = None
    expires_on: datetime.date | None = None

    def error(self, column: str, code: str, **params: Any) -> None:
        self.errors.append((column, code, params))


_AMOUNT = re.compile(r"\d{1,10}(?:\.\d{1,2})?")
_POINTS = re.compile(r"\d{1,12}")
_CHANNELS = frozenset(Purchase.Channel.values)


class _Checker:
    """Turns a CSV record into a `_Row`, noting every problem found in the row itself."""

    def __init__(self, *, kind: str, header: _Header, stores: dict[str, tuple[int, str]]):
        self.kind = kind
        self.width = header.width
        names = [name for name, _required, _help in COLUMNS[kind]]
        self.cells = itemgetter(*(header.positions.get(name, header.width) for name in names))
        self.stores = stores
        self.now = timezone.now()
        self.today = timezone.localdate(self.now)
        self.zone = settings.TIME_ZONE
        self.seen: dict[Any, int] = {}

    def check(self, line: int, fields: list[str]) -> _Row:
        if len(fields) < self.width or any(value.strip() for value in fields[self.width :]):
            row = _Row(line=line, ref="")
            row.error("", "field_count", found=len(fields), expected=self.width)
            return row
        fields.append("")
        cells = [value.strip() for value in self.cells(fields)]
        if self.kind == PointsImport.Kind.PURCHASES:
            return self._purchase(line, *cells)
        return self._balance(line, *cells)

    def _member(self, row: _Row, member_no: str, phone: str) -> None:
        if member_no:
            row.member_no = member_no.upper()
        elif phone:
            try:
                row.phone = import_phone_normalize(phone)
            except InvalidPhone:
                row.error("phone", "phone_invalid", value=phone[:40])
        else:
            row.error("member_no", "member_required")

    def _purchase(
        self, line, store, receipt_no, member_no, phone, occurred_at, amount, channel, category, sku
    ) -> _Row:
        row = _Row(line=line, ref=receipt_no[:100])
        if not store:
            row.error("store", "required", name="store")
        else:
            found = self.stores.get(store.upper())
            if found is None:
                row.error("store", "store_unknown", value=store[:40])
            else:
                row.store_id, row.store_code = found
        if not receipt_no:
            row.error("receipt_no", "required", name="receipt_no")
        elif len(receipt_no) > RECEIPT_MAX:
            row.error("receipt_no", "too_long", name="receipt_no", max=RECEIPT_MAX)
        self._member(row, member_no, phone)
        if not occurred_at:
            row.error("occurred_at", "required", name="occurred_at")
        else:
            row.occurred_at = _parse_datetime(occurred_at, self.zone)
            if row.occurred_at is None:
                row.error("occurred_at", "datetime_invalid", value=occurred_at[:40])
            elif row.occurred_at > self.now:
                row.error("occurred_at", "occurred_at_future", value=occurred_at[:40])
        if not amount:
            row.error("amount", "required", name="amount")
        elif _AMOUNT.fullmatch(amount) is None or not (value := Decimal(amount)) > 0:
            row.error("amount", "amount_invalid", value=amount[:40])
        else:
            row.amount = value.quantize(CENT)
        if channel:
            if channel.lower() not in _CHANNELS:
                row.error("channel", "channel_invalid", value=channel[:40])
            else:
                row.channel = channel.lower()
        if len(category) > CATEGORY_MAX:
            row.error("category", "too_long", name="category", max=CATEGORY_MAX)
        row.category = category
        if len(sku) > SKU_MAX:
            row.error("sku", "too_long", name="sku", max=SKU_MAX)
        row.sku = sku
        # Every row takes part, so a second run of the file reports the same lines.
        if row.store_id and receipt_no:
            first = self.seen.setdefault((row.store_id, receipt_no), line)
            if first != line:
                row.error("receipt_no", "receipt_duplicate", line=first)
        return row

    def _balance(self, line, source_id, member_no, phone, points, expires_on, earned_on) -> _Row:
        row = _Row(line=line, ref=source_id[:100])
        if not source_id:
            row.error("source_id", "required", name="source_id")
        elif len(source_id) > SOURCE_ID_MAX:
            row.error("source_id", "too_long", name="source_id", max=SOURCE_ID_MAX)
        self._member(row, member_no, phone)
        if not points:
            row.error("points", "required", name="points")
        elif _POINTS.fullmatch(points) is None or not 0 < int(points) <= MAX_POINTS:
            row.error("points", "points_invalid", value=points[:40])
        else:
            row.points = int(points)
        if not expires_on:
            row.error("expires_on", "required", name="expires_on")
        else:
            day = _parse_date(expires_on)
            if day is None:
                row.error("expires_on", "date_invalid", value=expires_on[:40])
            elif day <= self.today:
                row.error("expires_on", "expires_on_past", value=expires_on)
            else:
                row.expires_on = day
                # The end of that day in Beijing, stored as the next midnight (expiry_for).
                row.expires_at = datetime.datetime.combine(
                    day + datetime.timedelta(days=1), datetime.time(), tzinfo=BUSINESS_TZ
                )
        if earned_on:
            day = _parse_date(earned_on)
            if day is None:
                row.error("earned_on", "date_invalid", value=earned_on[:40])
            elif day > self.today:
                row.error("earned_on", "earned_on_future", value=earned_on)
            else:
                row.earned_at = datetime.datetime.combine(day, datetime.time(), tzinfo=BUSINESS_TZ)
        if source_id:
            first = self.seen.setdefault(source_id, line)
            if first != line:
                row.error("source_id", "source_id_duplicate", line=first)
        return row


class _Reader:
    """Reads and checks the rows a batch at a time in a thread, while the main thread waits
    for the database to write the previous batch (the same split as the member import)."""

    _DONE = object()

    def __init__(self, *, records: Iterator[tuple[int, list[str]]], checker: _Checker) -> None:
        self.records = records
        self.checker = checker
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="points-import-reader", daemon=True)

    def batches(self) -> Iterator[list[_Row]]:
        self.thread.start()
        try:
            while True:
                item = self.queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.stop.set()
            self.thread.join()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            batch: list[_Row] = []
            for line, fields in self.records:
                batch.append(self.checker.check(line, fields))
                if len(batch) >= BATCH_SIZE:
                    if not self._put(batch):
                        return
                    batch = []
            if batch and not self._put(batch):
                return
            self._put(self._DONE)
        except BaseException as exc:  # handed to the main thread, which raises it
            self._put(exc)


# --- Earning ----------------------------------------------------------------------------


class EarningCalculator:
    """The points a purchase earns, as `purchase_record` computes them, without per-row queries:
    the policy and the category rates are read once; the multiplier is memoised (see above)."""

    def __init__(self) -> None:
        self.policy = policy_get()
        self.rates = dict(CategoryRate.objects.values_list("category", "rate"))
        self.base_rate = self.policy.base_rate
        self.policy_rate = self.policy.base_rate or Decimal(1)
        self.pending = datetime.timedelta(days=self.policy.pending_days)
        self.per_row = bool(earning._promotion_providers)
        self.multipliers: dict[tuple[Any, ...], Decimal] = {}
        self.members: dict[int, Member] = {}

    def _member(self, member_ref: tuple[Any, ...]) -> Member:
        member = self.members.get(member_ref[0])
        if member is None:
            if len(self.members) > 50_000:
                self.members.clear()
            pk, member_no, birthday, status = member_ref
            # As `Member.objects.only(...)` would build it (other fields load on access):
            # Model.__init__ with every default costs 60 µs, a tenth of a row's budget.
            member = Member.from_db(
                connection.alias,
                ["id", "member_no", "birthday", "status"],
                [pk, member_no, birthday, status],
            )
            self.members[pk] = member
        return member

    def eligible(self, amount: Decimal, category: str) -> Decimal:
        # earning.eligible_amount with the row as one line of its category.
        rate = self.rates.get(category) if category else None
        return amount if rate is None else amount * rate / self.policy_rate

    def multiplier(
        self, *, member_ref, store_code: str, channel: str, occurred_at, category: str
    ) -> Decimal:
        local = occurred_at.astimezone(BUSINESS_TZ)
        key = (member_ref[0], local.year, local.month)
        if not self.per_row:
            cached = self.multipliers.get(key)
            if cached is not None:
                return cached
        context = PurchaseContext(
            member=self._member(member_ref),
            store_code=store_code,
            channel=channel,
            occurred_at=occurred_at,
            categories=frozenset((category,)) if category else frozenset(),
        )
        value = multiplier_for(context=context, policy=self.policy)
        if not self.per_row:
            if len(self.multipliers) > 500_000:
                self.multipliers.clear()
            self.multipliers[key] = value
        return value

    def points(self, eligible: Decimal, multiplier: Decimal) -> int:
        # earning.points_for: rounded down per purchase.
        value = (eligible * self.base_rate * multiplier).quantize(Decimal(1), rounding=ROUND_FLOOR)
        return max(int(value), 0)


# --- Database lookups per batch ------------------------------------------------------------


def _resolve_members(rows: list[_Row]) -> None:
    """Find each row's member by number (or phone): ONE query for the whole batch."""
    numbers = {row.member_no for row in rows if row.member_no}
    phones = {row.phone for row in rows if row.phone}
    found = _members_matching(
        columns=("id", "member_no", "phone", "birthday", "status"),
        any_of={"member_no": numbers, "phone": phones},
    )
    by_no: dict[str, tuple[Any, ...]] = {}
    by_phone: dict[str, tuple[Any, ...]] = {}
    for pk, member_no, phone, birthday, status in found:
        ref = (pk, member_no, birthday, status)
        by_no[member_no] = ref
        if phone:
            by_phone[phone] = ref
    for row in rows:
        if row.member_no:
            ref = by_no.get(row.member_no)
            if ref is None:
                row.error("member_no", "member_unknown", value=row.member_no[:40])
                continue
        elif row.phone:
            ref = by_phone.get(row.phone)
            if ref is None:
                row.error("phone", "phone_unknown", value=row.phone)
                continue
        else:
            continue
        row.member_id = ref[0]
        row.member_ref = ref


def _values_any(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _existing_purchases(rows: list[_Row]) -> dict[tuple[int, str], str]:
    """(store id, receipt) → fingerprint of the purchases already recorded, for these rows."""
    stores = {row.store_id for row in rows}
    receipts = {row.ref for row in rows}
    if not receipts:
        return {}
    if use_copy():
        # Pairs as two arrays, joined on the (store, receipt) unique index: one probe each.
        found = _values_any(
            f"SELECT p.store_id, p.receipt_no, p.fingerprint FROM {Purchase._meta.db_table} p "  # noqa: S608
            "JOIN unnest(%s::bigint[], %s::text[]) AS k(store_id, receipt_no) "
            "ON p.store_id = k.store_id AND p.receipt_no = k.receipt_no",
            [[row.store_id for row in rows], [row.ref for row in rows]],
        )
    else:
        found = Purchase.objects.filter(store_id__in=stores, receipt_no__in=receipts).values_list(
            "store_id", "receipt_no", "fingerprint"
        )
    return {(store_id, receipt): fp for store_id, receipt, fp in found}


def _existing_keys(keys: set[str]) -> dict[str, str]:
    if not keys:
        return {}
    if use_copy():
        found = _values_any(
            f"SELECT idempotency_key, fingerprint FROM {LedgerTransaction._meta.db_table} "  # noqa: S608
            "WHERE idempotency_key = ANY(%s)",
            [list(keys)],
        )
    else:
        found = LedgerTransaction.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", "fingerprint"
        )
    return dict(found)


def _purchase_row_fingerprint(row: _Row) -> str:
    lines = (
        [LineInput(sku=row.sku, category=row.category, amount=row.amount)]
        if row.sku or row.category
        else []
    )
    return _purchase_fingerprint(
        member=SimpleNamespace(member_no=row.member_ref[1]),
        store=SimpleNamespace(code=row.store_code),
        receipt_no=row.ref,
        occurred_at=row.occurred_at,
        amount=row.amount,
        channel=row.channel,
        lines=lines,
        points_to_use=0,
    )


def _balance_fingerprint(row: _Row) -> str:
    from .ledger import fingerprint

    return fingerprint(
        {
            "source_id": row.ref,
            "member": row.member_ref[1],
            "points": row.points,
            "expires_on": row.expires_on.isoformat(),
            "earned_on": row.earned_at.date().isoformat() if row.earned_at else "",
        }
    )


# --- Writing a batch ------------------------------------------------------------------------


@dataclass
class _BatchResult:
    created: int = 0
    existing: int = 0
    bad_lines: int = 0
    points: int = 0
    errors: list[PointsImportError] = field(default_factory=list)


_PURCHASE_OWN = (
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
    "fingerprint",
    "recorded_by_id",
    "recorded_at",
)
_LINE_OWN = ("purchase_id", "sku", "category", "quantity", "amount")


@dataclass(slots=True)
class PreparedPurchase:
    """A checked purchase ready to post: what `purchases_post_batch` writes."""

    member_id: int
    store_id: int
    store_code: str
    receipt_no: str
    occurred_at: datetime.datetime
    amount: Decimal
    channel: str
    category: str
    sku: str
    fingerprint: str
    eligible: Decimal
    points: int


def purchases_post_batch(
    *,
    purchases: list[PreparedPurchase],
    calculator: EarningCalculator,
    actor_id: int | None,
    now: datetime.datetime,
) -> int:
    """Write checked purchases and post their points; inside the caller's transaction.

    Returns the points posted. Also used by `manage.py loadgen`.
    """
    if not purchases:
        return 0
    accounts = accounts_lock(member_ids={p.member_id for p in purchases})
    replaced = bulk_checks_begin()
    credits = []
    earning_rows = []
    for p in purchases:
        if p.points:
            earning_rows.append(p)
            credits.append(
                BulkCredit(
                    member_id=p.member_id,
                    points=p.points,
                    key=f"purchase:{p.store_code}:{p.receipt_no}",
                    fingerprint=p.fingerprint,
                    source=LedgerTransaction.Source.PURCHASE,
                    source_ref=p.receipt_no,
                    occurred_at=p.occurred_at,
                    available_at=p.occurred_at + calculator.pending,
                    expires_at=_expiry(p.occurred_at),
                )
            )
    txn_ids = points_credit_bulk(
        credits=credits,
        counter_kind=Account.Kind.ISSUANCE,
        actor_id=actor_id,
        now=now,
        accounts=accounts,
    )
    txn_of = {id(p): pk for p, pk in zip(earning_rows, txn_ids, strict=True)}
    if use_copy():
        _purchases_copy(purchases, txn_of=txn_of, actor_id=actor_id, now=now)
    else:
        _purchases_orm(purchases, txn_of=txn_of, actor_id=actor_id, now=now)
    if replaced:
        bulk_checks_end(
            transaction_ids=txn_ids,
            references={
                Member._meta.db_table: {p.member_id for p in purchases},
                Store._meta.db_table: {p.store_id for p in purchases},
            },
        )
    return sum(credit.points for credit in credits)


_EXPIRY_CACHE: dict[tuple[int, int], datetime.datetime] = {}


def _expiry(occurred_at: datetime.datetime) -> datetime.datetime:
    """ledger.expiry_for, memoised by month (the end of the 12th month after it)."""
    local = occurred_at.astimezone(BUSINESS_TZ)
    key = (local.year, local.month)
    value = _EXPIRY_CACHE.get(key)
    if value is None:
        month = local.month + 1
        year = local.year + 1 + (month > 12)
        month = month - 12 if month > 12 else month
        value = _EXPIRY_CACHE[key] = datetime.datetime(year, month, 1, tzinfo=BUSINESS_TZ)
    return value


def _purchases_copy(purchases, *, txn_of, actor_id, now) -> None:
    layout = CopyLayout(Purchase, _PURCHASE_OWN, with_id=True)
    with_lines = [p for p in purchases if p.sku or p.category]
    ids = ids_draw(Purchase, len(purchases))
    recorded = now.isoformat()
    actor = str(actor_id) if actor_id else "\\N"
    lines = []
    line_text = []
    for pk, p in zip(ids, purchases, strict=True):
        txn = txn_of.get(id(p))
        txn_text = str(txn) if txn else "\\N"
        lines.append(
            f"{pk}\t{p.member_id}\t{p.store_id}\t{p.channel}\t{copy_escape(p.receipt_no)}\t"
            f"{p.occurred_at.isoformat()}\t{p.amount}\t0\t"
            f"{p.eligible.quantize(CENT, rounding=ROUND_FLOOR)}\t{p.points}\t0\t"
            f"{txn_text}\t{p.fingerprint}\t{actor}\t{recorded}{layout.tail}\n"
        )
        if p.sku or p.category:
            line_text.append(
                f"{pk}\t{copy_escape(p.sku)}\t{copy_escape(p.category)}\t1\t{p.amount}\n"
            )
    copy_write(layout.sql(), lines)
    if with_lines:
        line_layout = CopyLayout(PurchaseLine, _LINE_OWN, with_id=False)
        copy_write(line_layout.sql(), (text[:-1] + line_layout.tail + "\n" for text in line_text))


def _purchases_orm(purchases, *, txn_of, actor_id, now) -> None:
    objects = [
        Purchase(
            member_id=p.member_id,
            store_id=p.store_id,
            channel=p.channel,
            receipt_no=p.receipt_no,
            occurred_at=p.occurred_at,
            amount=p.amount,
            points_used=0,
            eligible_amount=p.eligible.quantize(CENT, rounding=ROUND_FLOOR),
            points_earned=p.points,
            earn_transaction_id=txn_of.get(id(p)),
            fingerprint=p.fingerprint,
            recorded_by_id=actor_id,
            recorded_at=now,
        )
        for p in purchases
    ]
    Purchase.objects.bulk_create(objects, batch_size=500)
    if any(obj.pk is None for obj in objects):
        ids = {
            (store_id, receipt): pk
            for pk, store_id, receipt in Purchase.objects.filter(
                receipt_no__in=[p.receipt_no for p in purchases]
            ).values_list("id", "store_id", "receipt_no")
        }
        for obj in objects:
            obj.pk = ids[(obj.store_id, obj.receipt_no)]
    PurchaseLine.objects.bulk_create(
        [
            PurchaseLine(purchase_id=obj.pk, sku=p.sku, category=p.category, amount=p.amount)
            for obj, p in zip(objects, purchases, strict=True)
            if p.sku or p.category
        ],
        batch_size=1000,
    )


class _Importer:
    def __init__(self, *, points_import: PointsImport, progress: ProgressCallback | None) -> None:
        self.points_import = points_import
        self.kind = points_import.kind
        self.progress = progress
        self.actor_id = points_import.actor_id
        self.now = timezone.now()
        self.processed = self.created = self.existing = self.bad = self.points = 0
        self.started = time.monotonic()
        self.calculator: EarningCalculator | None = None

    def run(self, content: bytes) -> None:
        header, records = _read_file(content, self.kind)
        stores = {code.upper(): (pk, code) for pk, code in Store.objects.values_list("id", "code")}
        checker = _Checker(kind=self.kind, header=header, stores=stores)
        self.now = checker.now
        if self.kind == PointsImport.Kind.PURCHASES:
            self.calculator = EarningCalculator()
        reader = _Reader(records=records, checker=checker)
        for batch in reader.batches():
            self._flush(batch)

    def _flush(self, rows: list[_Row]) -> None:
        for attempt in range(3):
            # Rows are resolved afresh on each attempt.
            for row in rows:
                row.member_id = 0
                row.member_ref = None
            snapshot = [list(row.errors) for row in rows]
            try:
                with transaction.atomic():
                    result = self._write(rows)
                break
            except IntegrityError:
                # A till recorded one of these receipts after our check: the batch was rolled
                # back whole; check it again.
                for row, errors in zip(rows, snapshot, strict=True):
                    row.errors = errors
                if attempt == 2:
                    raise
        self.processed += len(rows)
        self.created += result.created
        self.existing += result.existing
        self.bad += result.bad_lines
        self.points += result.points
        if self.progress is not None:
            self.progress(self._progress())

    def _progress(self) -> ImportProgress:
        return ImportProgress(
            processed=self.processed,
            total=self.points_import.total_rows,
            created=self.created,
            existing=self.existing,
            bad=self.bad,
            points=self.points,
            seconds=time.monotonic() - self.started,
        )

    def _write(self, rows: list[_Row]) -> _BatchResult:
        result = _BatchResult()
        if use_copy():
            with connection.cursor() as cursor:
                # Index probes, not scans of tables that grow with every import.
                cursor.execute("SET LOCAL enable_seqscan = off")
        _resolve_members([row for row in rows if not row.errors])
        if self.kind == PointsImport.Kind.PURCHASES:
            good = self._purchases(rows, result)
        else:
            good = self._balances(rows, result)
        for row in rows:
            if row.errors:
                result.bad_lines += 1
                result.errors.extend(
                    PointsImportError(
                        points_import_id=self.points_import.pk,
                        line=row.line,
                        ref=row.ref,
                        column=column,
                        code=code,
                        params=params,
                    )
                    for column, code, params in row.errors
                )
        result.created = good
        PointsImportError.objects.bulk_create(result.errors, batch_size=1000)
        PointsImport.objects.filter(pk=self.points_import.pk).update(
            processed_rows=self.processed + len(rows),
            created_count=self.created + result.created,
            existing_count=self.existing + result.existing,
            bad_count=self.bad + result.bad_lines,
            points_posted=self.points + result.points,
        )
        return result

    def _purchases(self, rows: list[_Row], result: _BatchResult) -> int:
        calculator = self.calculator
        assert calculator is not None
        candidates = [row for row in rows if not row.errors]
        existing = _existing_purchases(candidates)
        prepared = []
        for row in candidates:
            row.fingerprint = _purchase_row_fingerprint(row)
            found = existing.get((row.store_id, row.ref))
            if found is not None:
                if found == row.fingerprint:
                    result.existing += 1
                else:
                    row.error("receipt_no", "receipt_conflict", value=row.ref)
                continue
            if row.member_ref[3] != Member.Status.ACTIVE:
                row.error("member_no", "member_inactive", member_no=row.member_ref[1])
                continue
            eligible = calculator.eligible(row.amount, row.category)
            multiplier = calculator.multiplier(
                member_ref=row.member_ref,
                store_code=row.store_code,
                channel=row.channel,
                occurred_at=row.occurred_at,
                category=row.category,
            )
            prepared.append(
                PreparedPurchase(
                    member_id=row.member_id,
                    store_id=row.store_id,
                    store_code=row.store_code,
                    receipt_no=row.ref,
                    occurred_at=row.occurred_at,
                    amount=row.amount,
                    channel=row.channel,
                    category=row.category,
                    sku=row.sku,
                    fingerprint=row.fingerprint,
                    eligible=eligible,
                    points=calculator.points(eligible, multiplier),
                )
            )
        result.points = purchases_post_batch(
            purchases=prepared, calculator=calculator, actor_id=self.actor_id, now=self.now
        )
        return len(prepared)

    def _balances(self, rows: list[_Row], result: _BatchResult) -> int:
        candidates = [row for row in rows if not row.errors]
        existing = _existing_keys({BALANCE_KEY.format(row.ref) for row in candidates})
        credits = []
        for row in candidates:
            row.fingerprint = _balance_fingerprint(row)
            key = BALANCE_KEY.format(row.ref)
            found = existing.get(key)
            if found is not None:
                if found == row.fingerprint:
                    result.existing += 1
                else:
                    row.error("source_id", "balance_conflict", value=row.ref)
                continue
            if row.member_ref[3] not in (Member.Status.ACTIVE, Member.Status.FROZEN):
                # A frozen member keeps their points; a closed or merged one has none to keep.
                row.error("member_no", "member_inactive", member_no=row.member_ref[1])
                continue
            earned_at = row.earned_at or self.now
            credits.append(
                BulkCredit(
                    member_id=row.member_id,
                    points=row.points,
                    key=key,
                    fingerprint=row.fingerprint,
                    source=LedgerTransaction.Source.IMPORT,
                    source_ref=row.ref,
                    reason=gettext("Opening balance"),
                    occurred_at=earned_at,
                    available_at=earned_at,
                    expires_at=row.expires_at,
                )
            )
        accounts = accounts_lock(member_ids={credit.member_id for credit in credits})
        replaced = bulk_checks_begin()
        txn_ids = points_credit_bulk(
            credits=credits,
            counter_kind=Account.Kind.ISSUANCE,
            actor_id=self.actor_id,
            now=self.now,
            accounts=accounts,
        )
        if replaced:
            bulk_checks_end(
                transaction_ids=txn_ids,
                references={Member._meta.db_table: {credit.member_id for credit in credits}},
            )
        result.points = sum(credit.points for credit in credits)
        return len(credits)


# --- Services ---------------------------------------------------------------------------


def points_import_start(
    *,
    kind: str,
    file_name: str,
    content: bytes,
    actor: User | None = None,
    actor_label: str = "",
    keep_content: bool = True,
) -> PointsImport:
    """Check the file as a whole and record it, ready to run; raises `ImportFileError`."""
    if kind not in COLUMNS:
        raise ValueError(f"unknown import kind {kind}")
    header, records = _read_file(content, kind)
    try:
        total = sum(1 for _record in records)
    except csv.Error:
        raise ImportFileError(gettext("This is not a CSV file.")) from None
    if total == 0:
        raise ImportFileError(gettext("The file has a header but no rows below it."))
    if actor is not None and actor.is_authenticated:
        actor_label = str(actor)
    else:
        actor = None
    return PointsImport.objects.create(
        kind=kind,
        file_name=os.path.basename(file_name)[:255] or f"{kind}.csv",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        content=content if keep_content else b"",
        columns=header.columns,
        ignored_columns=header.ignored,
        total_rows=total,
        actor=actor,
        actor_label=actor_label,
    )


def points_import_run(
    *,
    points_import_id: int,
    content: bytes | None = None,
    progress: ProgressCallback | None = None,
) -> PointsImport:
    """Import the rows of a started import; safe to call twice (a finished run is kept).

    A run interrupted part-way starts again from the top: the batches it committed are found
    by receipt / source_id and counted as already imported.
    """
    with transaction.atomic():
        points_import = (
            PointsImport.objects.select_for_update().defer("content").get(pk=points_import_id)
        )
        if points_import.is_finished:
            return points_import
        points_import.status = PointsImport.Status.RUNNING
        points_import.started_at = timezone.now()
        points_import.processed_rows = points_import.created_count = 0
        points_import.existing_count = points_import.bad_count = points_import.points_posted = 0
        points_import.save(
            update_fields=[
                "status",
                "started_at",
                "processed_rows",
                "created_count",
                "existing_count",
                "bad_count",
                "points_posted",
            ]
        )
        points_import.errors.all().delete()
    if content is None:
        content = bytes(
            PointsImport.objects.values_list("content", flat=True).get(pk=points_import_id)
        )
    importer = _Importer(points_import=points_import, progress=progress)
    try:
        importer.run(content)
    except Exception as exc:
        _finish(
            points_import=points_import, importer=importer, failure=f"{type(exc).__name__}: {exc}"
        )
        raise
    return _finish(points_import=points_import, importer=importer)


def _finish(*, points_import: PointsImport, importer: _Importer, failure: str = "") -> PointsImport:
    points_import.status = PointsImport.Status.FAILED if failure else PointsImport.Status.DONE
    points_import.failure = failure
    points_import.finished_at = timezone.now()
    points_import.processed_rows = importer.processed
    points_import.created_count = importer.created
    points_import.existing_count = importer.existing
    points_import.bad_count = importer.bad
    points_import.points_posted = importer.points
    with transaction.atomic():
        PointsImport.objects.filter(pk=points_import.pk).update(
            status=points_import.status,
            failure=failure,
            finished_at=points_import.finished_at,
            processed_rows=importer.processed,
            created_count=importer.created,
            existing_count=importer.existing,
            bad_count=importer.bad,
            points_posted=importer.points,
        )
        audit_log(
            actor=points_import.actor,
            actor_label=points_import.actor_label,
            action=f"points.import_{points_import.kind}",
            target=points_import,
            details={
                "file_name": points_import.file_name,
                "sha256": points_import.sha256,
                "status": points_import.status,
                "rows": importer.processed,
                "imported": importer.created,
                "already_imported": importer.existing,
                "bad_rows": importer.bad,
                "points": importer.points,
                "seconds": round(time.monotonic() - importer.started, 3),
                **({"failure": failure} if failure else {}),
            },
        )
    return points_import


def points_import_file(
    *,
    kind: str,
    file_name: str,
    content: bytes,
    actor: User | None = None,
    actor_label: str = "",
    progress: ProgressCallback | None = None,
) -> PointsImport:
    """Start and run an import in one go (the command line and the benchmark)."""
    points_import = points_import_start(
        kind=kind,
        file_name=file_name,
        content=content,
        actor=actor,
        actor_label=actor_label,
        keep_content=False,
    )
    return points_import_run(points_import_id=points_import.pk, content=content, progress=progress)


# --- Reads ------------------------------------------------------------------------------


def points_import_get(*, import_id: int, kind: str) -> PointsImport | None:
    return PointsImport.objects.defer("content").filter(pk=import_id, kind=kind).first()


def points_import_list(*, kind: str, limit: int = 20) -> QuerySet[PointsImport]:
    return (
        PointsImport.objects.defer("content")
        .filter(kind=kind)
        .order_by("-created_at", "-id")[:limit]
    )


def points_import_error_list(*, points_import: PointsImport) -> QuerySet[PointsImportError]:
    return points_import.errors.order_by("line", "id")


def import_error_message(error: PointsImportError) -> str:
    template = MESSAGES.get(error.code)
    if template is None:
        return error.code
    try:
        return str(template) % error.params if error.params else str(template)
    except (KeyError, TypeError, ValueError):
        return str(template)
