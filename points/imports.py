"""CSV imports for points: purchases from the tills' history, opening balances from an old system.

Same design as the member import (members/imports.py): `points_import_start` checks the file
as a whole (UTF-8, header, at least one row) and records it, `points_import_run` does the
rows in batches of `BATCH_SIZE` — each batch one transaction that writes the good rows, the
bad rows' errors and the progress counters — and one audit entry is written for the run.
A thread reads and checks the rows of the next batch while the current one is written.

Purchases (`store, receipt_no, member_no|phone, occurred_at, amount, channel?, category?,
sku?`) are idempotent by store + receipt number: a receipt already recorded with the same
details (the same fingerprint `purchase_record` computes) counts as "already imported", with
other details it is a bad row. Each purchase earns what it would at the till: base rate,
category rate (a row's category is its one line), the member's tier multiplier and the
birthday month (or, when the campaigns app has registered promotions, theirs), rounded down.
Each one is written with its ledger transaction, two entries summing to zero, its lot
(after any debt is paid, as `ledger._credit` does) and its `tiers.QualifyingActivity` row
(spend = amount: the file carries no points used as payment); the nightly tier job upgrades
the members from those rows. Simplifications, on purpose:

- the tier is the member's tier when the batch is written (the till's, at that moment); an
  imported purchase does not upgrade the member at once, the nightly tier job does;
- no referral bonus: the history of an old system is not a referee's first purchase here;
- no points used as payment: the file carries what was paid, not how.

On PostgreSQL a batch costs a few statements, whatever its size: the rows are checked and
their points computed in Python (where `earning` and the fingerprint live), then COPYed to a
temporary staging table, and ONE statement derives the purchases, lines, transactions,
entries, lots, qualifying activity and account totals from it (`_PostStatement`). The
database's share is most of the work (about 30 index entries per purchase), so `WRITERS`
connections write batches side by side, the rows dealt out by member so that they seldom
wait for each other's account locks.

Imports take older dates than the till, from `IMPORT_EARLIEST_DATE` (1990-01-01) to now, and
amounts up to the till's `POINTS_PURCHASE_MAX_AMOUNT`; a purchase earns at most `MAX_POINTS`.
Every value out of bounds (or holding a NUL, or past the csv module's field limit) is its
row's error, found by the checker before anything reaches COPY or the ORM; a row the
database refuses all the same is written around and reported (`_Importer._write_split`).

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
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DataError, IntegrityError, OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.imports import (
    OverlongLine,
    _decode,
    _members_matching,
    _parse_date,
    _parse_datetime,
    _records,
    bulk_python,
    import_phone_normalize,
    refusal_reason,
    text_without_nul,
)
from members.models import Member, Store, User
from members.numbers import InvalidPhone
from members.services import MemberError, audit_log
from tiers.models import MemberTier, TierLevel
from tiers.selectors import tier_levels

from . import earning
from .earning import PurchaseContext, earning_rules
from .ledger import BUSINESS_TZ
from .ledger_bulk import (
    BulkCredit,
    accounts_lock,
    int_array,
    points_credit_bulk,
    text_array,
    use_copy,
)
from .models import (
    Account,
    Category,
    LedgerTransaction,
    PointsImport,
    PointsImportError,
    Purchase,
    PurchaseLine,
)
from .posting import MemberFacts, PlannedLine, PurchasePosting, birthday_month_of, purchase_plan
from .posting.writers import CREATED, postings_write
from .purchase_limits import purchase_amount_limit
from .services import CENT

BATCH_SIZE = 5000
# PostgreSQL connections writing batches side by side: the database's work per purchase is
# several times the Python's, and a batch's statements use one core.
WRITERS = 2
MAX_ERRORS_SHOWN = 500
# The most points one opening balance may bring, or one imported purchase earn.
MAX_POINTS = 100_000_000
# How far ahead an opening balance may expire, in years after this one.
MAX_EXPIRY_YEARS = 10

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
    (
        "category",
        False,
        _(
            "Product category: a code of the category list; special-rate and excluded "
            "categories apply."
        ),
    ),
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
    "occurred_at_too_early": _("The time of purchase %(value)s is before %(earliest)s."),
    "amount_invalid": _("“%(value)s” is not an amount above 0 with at most 2 decimals."),
    "amount_too_large": _("The amount %(value)s is above the limit of ¥%(max)s for one purchase."),
    "points_too_many": _("The purchase would earn %(points)s points, more than %(max)s."),
    "channel_invalid": _("“%(value)s” is not a channel: use store, online, app or mini_program."),
    "category_unknown": _(
        "“%(value)s” is not a category of the list: an administrator adds it in the admin "
        "(Categories), then run the file again."
    ),
    "receipt_duplicate": _("The same store and receipt number are on line %(line)s."),
    "receipt_conflict": _(
        "Receipt %(value)s of this store was already recorded with other details."
    ),
    "points_invalid": _("“%(value)s” is not a whole number of points above 0."),
    "expires_on_past": _("The points would expire on %(value)s, which is not in the future."),
    "earned_on_future": _("The day earned %(value)s is in the future."),
    "earned_on_too_early": _("The day earned %(value)s is before %(earliest)s."),
    "expires_on_too_late": _("The points would expire on %(value)s, after %(latest)s."),
    "nul_character": _("%(name)s holds a NUL character (\\0), which cannot be stored."),
    "field_too_long": _("A field of this line is longer than %(max)s characters."),
    "row_refused": _("The database refused this row: %(reason)s"),
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
    columns = [text_without_nul(name.strip().lower()) for name in fields]
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


def _read_file(content: bytes, kind: str) -> tuple[_Header, Iterator[tuple[int, list[str]]], bool]:
    """The header, the records after it, and whether the file holds a NUL anywhere."""
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
    return _header(first[1], kind), records, "\x00" in text


# --- Rows -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    """A bad row (any kind), or an opening balance; good purchases are `_Good` tuples."""

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


# A purchase row without problems, as a plain tuple (a dataclass per row costs more than
# the rest of its check):
#   (line, store_id, store_code, receipt_no, member_no, phone, occurred_at ISO text,
#    (year, month) in Beijing, amount text with 2 decimals, amount, channel, category, sku)
_Good = tuple

_AMOUNT = re.compile(r"\d{1,10}(?:\.\d{1,2})?")
_POINTS = re.compile(r"\d{1,12}")
_CHANNELS = frozenset(Purchase.Channel.values)
_STORE_CHANNEL = str(Purchase.Channel.STORE)


class _Checker:
    """Turns a CSV record into a good purchase (`_Good`) or a `_Row`, noting every problem
    found in the row itself.

    Purchases take a fast path first that handles the common row (member number, ISO time
    without an offset, plain amount) in a few µs; any row it is not sure of goes through
    `_purchase`, the full check, which also words the errors.
    """

    def __init__(
        self,
        *,
        kind: str,
        header: _Header,
        stores: dict[str, tuple[int, str]],
        categories: frozenset[str] = frozenset(),
        nul: bool = False,
    ):
        self.kind = kind
        self.width = header.width
        self.names = [name for name, _required, _help in COLUMNS[kind]]
        self.cells = itemgetter(*(header.positions.get(name, header.width) for name in self.names))
        self.stores = stores
        # The codes of the category list (points.Category): the staff purchase form accepts
        # only these, and so does the import.
        self.categories = categories
        self.nul = nul  # the file holds a NUL somewhere: every row is looked at for one
        self.now = timezone.now()
        self.today = timezone.localdate(self.now)
        # Imports take older dates than the till, but none before this day (Beijing time),
        # and no amount above the till's limit: a value out of these bounds is its row's
        # error, never a value that a column or COPY refuses half-way through a batch.
        self.earliest_day = settings.IMPORT_EARLIEST_DATE
        self.earliest_text = self.earliest_day.isoformat()
        self.earliest = datetime.datetime.combine(
            self.earliest_day, datetime.time(), tzinfo=ZoneInfo(settings.TIME_ZONE)
        )
        self.max_amount = purchase_amount_limit()
        self.latest_expiry = datetime.date(self.today.year + MAX_EXPIRY_YEARS, 12, 31)
        self.seen: dict[Any, int] = {}
        # The fast path for times without an offset (made aware in the default zone, as
        # `_parse_datetime` does): the zone's offset is looked up once per hour of the day,
        # and a time is compared with now as wall-clock time when the offsets are the same.
        self.tz = ZoneInfo(settings.TIME_ZONE)
        local_now = self.now.astimezone(self.tz)
        self.now_local = local_now.replace(tzinfo=None)
        self.earliest_local = self.earliest.replace(tzinfo=None)
        self.now_offset = local_now.utcoffset()
        self.offsets: dict[str, str] = {}
        self.in_business_zone = self.tz.key == BUSINESS_TZ.key
        self.store_by_text: dict[str, tuple[int, str] | None] = {}

    def check(self, line: int, fields: list[str]) -> _Good | _Row:
        if type(fields) is OverlongLine:
            row = _Row(line=line, ref="")
            row.error("", "field_too_long", max=csv.field_size_limit())
            return row
        if len(fields) != self.width and (
            len(fields) < self.width or any(value.strip() for value in fields[self.width :])
        ):
            row = _Row(line=line, ref="")
            row.error("", "field_count", found=len(fields), expected=self.width)
            return row
        fields.append("")
        cells = [value.strip() for value in self.cells(fields)]
        if self.nul and any("\x00" in value for value in cells):
            # Its error, in each column that holds one; nothing of the row goes further
            # (PostgreSQL stores no NUL in text).
            ref = cells[1] if self.kind == PointsImport.Kind.PURCHASES else cells[0]
            row = _Row(line=line, ref=text_without_nul(ref)[:100])
            for name, value in zip(self.names, cells, strict=True):
                if "\x00" in value:
                    row.error(name, "nul_character", name=name)
            return row
        if self.kind == PointsImport.Kind.PURCHASES:
            return self._purchase_fast(line, *cells) or self._purchase_good(
                self._purchase(line, *cells)
            )
        return self._balance(line, *cells)

    def _store(self, text: str) -> tuple[int, str] | None:
        found = self.store_by_text.get(text, False)
        if found is False:
            found = self.store_by_text[text] = self.stores.get(text.upper())
        return found

    def _when(self, text: str) -> tuple[str, tuple[int, int]] | None:
        """ISO text with offset and Beijing (year, month) of a time without an offset in the
        past; None when the full check should look at it."""
        try:
            naive = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
        if naive.tzinfo is not None or not self.in_business_zone or naive < self.earliest_local:
            return None
        iso = naive.isoformat()
        hour = iso[:13]
        suffix = self.offsets.get(hour)
        if suffix is None:
            aware = naive.replace(tzinfo=self.tz)
            # "" when the offset differs from now's: no wall-clock comparison then.
            suffix = aware.isoformat()[len(iso) :] if aware.utcoffset() == self.now_offset else ""
            self.offsets[hour] = suffix
        if not suffix or naive > self.now_local:
            return None
        return iso + suffix, (naive.year, naive.month)

    def _purchase_fast(
        self, line, store, receipt_no, member_no, phone, occurred_at, amount, channel, category, sku
    ) -> _Good | None:
        found = self._store(store)
        if (
            found is None
            or not receipt_no
            or len(receipt_no) > RECEIPT_MAX
            or not member_no
            or (category and category not in self.categories)
            or len(sku) > SKU_MAX
            or _AMOUNT.fullmatch(amount) is None
        ):
            return None
        when = self._when(occurred_at)
        if when is None:
            return None
        value = Decimal(amount)
        if not 0 < value <= self.max_amount:
            return None
        if len(amount) < 4 or amount[-3] != "." or amount[0] == "0":
            amount = str(value.quantize(CENT))
        if channel:
            channel = channel.lower()
            if channel not in _CHANNELS:
                return None
        else:
            channel = _STORE_CHANNEL
        if self.seen.setdefault((found[0], receipt_no), line) != line:
            return None
        return (
            line,
            found[0],
            found[1],
            receipt_no,
            member_no.upper(),
            "",
            when[0],
            when[1],
            amount,
            value,
            channel,
            category,
            sku,
        )

    @staticmethod
    def _purchase_good(row: _Row) -> _Good | _Row:
        if row.errors:
            return row
        local = row.occurred_at.astimezone(BUSINESS_TZ)
        return (
            row.line,
            row.store_id,
            row.store_code,
            row.ref,
            row.member_no,
            row.phone,
            row.occurred_at.isoformat(),
            (local.year, local.month),
            str(row.amount),
            row.amount,
            str(row.channel),
            row.category,
            row.sku,
        )

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
            row.occurred_at = _parse_datetime(occurred_at, self.tz)
            if row.occurred_at is None:
                row.error("occurred_at", "datetime_invalid", value=occurred_at[:40])
            elif row.occurred_at > self.now:
                row.error("occurred_at", "occurred_at_future", value=occurred_at[:40])
            elif row.occurred_at < self.earliest:
                row.error(
                    "occurred_at",
                    "occurred_at_too_early",
                    value=occurred_at[:40],
                    earliest=self.earliest_text,
                )
        if not amount:
            row.error("amount", "required", name="amount")
        elif _AMOUNT.fullmatch(amount) is None or not (value := Decimal(amount)) > 0:
            row.error("amount", "amount_invalid", value=amount[:40])
        elif value > self.max_amount:
            row.error("amount", "amount_too_large", value=amount, max=str(self.max_amount))
        else:
            row.amount = value.quantize(CENT)
        if channel:
            if channel.lower() not in _CHANNELS:
                row.error("channel", "channel_invalid", value=channel[:40])
            else:
                row.channel = channel.lower()
        if len(category) > CATEGORY_MAX:
            row.error("category", "too_long", name="category", max=CATEGORY_MAX)
        elif category and category not in self.categories:
            row.error("category", "category_unknown", value=category[:40])
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
            elif day > self.latest_expiry:
                row.error(
                    "expires_on",
                    "expires_on_too_late",
                    value=expires_on,
                    latest=self.latest_expiry.isoformat(),
                )
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
            elif day < self.earliest_day:
                row.error(
                    "earned_on", "earned_on_too_early", value=earned_on, earliest=self.earliest_text
                )
            else:
                row.earned_at = datetime.datetime.combine(day, datetime.time(), tzinfo=BUSINESS_TZ)
        if source_id:
            first = self.seen.setdefault(source_id, line)
            if first != line:
                row.error("source_id", "source_id_duplicate", line=first)
        return row


@dataclass(slots=True)
class _Batch:
    size: int
    # Purchases: `_Good` tuples; opening balances: `_Row`s without errors.
    good: list[Any]
    bad: list[_Row]


class _Reader:
    """Reads and checks the rows a batch at a time in a thread, while the writers wait for
    the database to write the previous batches (the same split as the member import).

    With several writers the rows are dealt out by member (number or phone), so two writers
    seldom want the same member's account lock; `parts` queues, one per writer.
    """

    _DONE = object()

    def __init__(
        self, *, records: Iterator[tuple[int, list[str]]], checker: _Checker, parts: int = 1
    ) -> None:
        self.records = records
        self.checker = checker
        self.queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=2) for _ in range(parts)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="points-import-reader", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()

    def batches(self, part: int = 0) -> Iterator[_Batch]:
        source = self.queues[part]
        while True:
            try:
                item = source.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    return  # another writer failed: the reader has stopped
                continue
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _put(self, part: int, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queues[part].put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        parts = len(self.queues)
        try:
            check = self.checker.check
            pending = [_Batch(size=0, good=[], bad=[]) for _ in range(parts)]
            part = 0
            for line, fields in self.records:
                row = check(line, fields)
                if type(row) is _Row:
                    if row.errors:
                        part = line % parts
                        pending[part].bad.append(row)
                    else:
                        if parts > 1:
                            part = hash(row.member_no or row.phone) % parts
                        pending[part].good.append(row)
                else:
                    if parts > 1:
                        part = hash(row[4] or row[5]) % parts
                    pending[part].good.append(row)
                batch = pending[part]
                batch.size += 1
                if batch.size >= BATCH_SIZE:
                    if not self._put(part, batch):
                        return
                    pending[part] = _Batch(size=0, good=[], bad=[])
            for part, batch in enumerate(pending):
                if batch.size and not self._put(part, batch):
                    return
            for part in range(parts):
                self._put(part, self._DONE)
        except BaseException as exc:  # handed to the writers, which raise it
            for part in range(parts):
                self._put(part, exc)


# --- Earning ----------------------------------------------------------------------------

_ONE = Decimal(1)


class PurchaseInputs:
    """What the posting plan of an imported purchase is given, read once per import: the
    earning rules (policy, category rates) and the base level's multiplier (the tier of a
    member with none). The members' tiers come with the members, once per batch
    (`_members_find`); campaign promotions are asked per row, as at the till. Shared by the
    writers: it holds no state of a batch."""

    def __init__(self) -> None:
        self.rules = earning_rules()
        self.per_row = earning.promotion_providers_active()
        levels = tier_levels()
        self.base_tier = levels[0].earn_multiplier if levels else _ONE
        self.member_objects: dict[int, Member] = {}

    def promotions(
        self,
        *,
        member_ref: tuple[Any, ...],
        store_code: str,
        channel: str,
        occurred_at: datetime.datetime,
        category: str,
    ) -> tuple[Decimal, ...]:
        """The campaign promotions that apply to this row (`earning.promotions_for`)."""
        return earning.promotions_for(
            context=PurchaseContext(
                member=self._member(member_ref),
                store_code=store_code,
                channel=channel,
                occurred_at=occurred_at,
                categories=frozenset((category,)) if category else frozenset(),
            )
        )

    def _member(self, member_ref: tuple[Any, ...]) -> Member:
        member = self.member_objects.get(member_ref[0])
        if member is None:
            if len(self.member_objects) > 50_000:
                self.member_objects.clear()
            pk, member_no, birthday, status = member_ref
            # As `Member.objects.only(...)` would build it (other fields load on access).
            member = Member.from_db(
                connection.alias,
                ["id", "member_no", "birthday", "status"],
                [pk, member_no, birthday, status],
            )
            self.member_objects[pk] = member
        return member


# --- Database lookups per batch ------------------------------------------------------------


def _values_any(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


_MembersFound = tuple[
    dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]], dict[int, Decimal | None]
]


def _members_find(*, numbers: set[str], phones: set[str]) -> _MembersFound:
    """The members with these numbers or phones: (by number, by phone, tier multiplier by
    id — of those that have a tier), each member as (id, member_no, birthday, status)."""
    if use_copy():
        # ONE query, tiers included; each set as one array literal (see `text_array`).
        found = _values_any(
            "SELECT m.id, m.member_no, m.phone, m.birthday, m.status, l.earn_multiplier "  # noqa: S608
            f"FROM {Member._meta.db_table} m "
            f"LEFT JOIN {MemberTier._meta.db_table} t ON t.member_id = m.id "
            f"LEFT JOIN {TierLevel._meta.db_table} l ON l.id = t.level_id "
            "WHERE m.member_no = ANY(%s::text[]) OR m.phone = ANY(%s::text[])",
            [text_array(numbers), text_array(phones)],
        )
    else:
        found = _members_matching(
            columns=("id", "member_no", "phone", "birthday", "status"),
            any_of={"member_no": numbers, "phone": phones},
        )
        tiers = dict(
            MemberTier.objects.filter(member_id__in={row[0] for row in found}).values_list(
                "member_id", "level__earn_multiplier"
            )
        )
        found = [(*row, tiers.get(row[0])) for row in found]
    by_no: dict[str, tuple[Any, ...]] = {}
    by_phone: dict[str, tuple[Any, ...]] = {}
    tiers_found: dict[int, Decimal | None] = {}
    for pk, member_no, phone, birthday, status, tier in found:
        ref = (pk, member_no, birthday, status)
        by_no[member_no] = ref
        if phone:
            by_phone[phone] = ref
        tiers_found[pk] = tier
    return by_no, by_phone, tiers_found


def _resolve_members(rows: list[_Row]) -> None:
    """Find each row's member by number (or phone): ONE query for the whole batch."""
    by_no, by_phone, _tiers = _members_find(
        numbers={row.member_no for row in rows if row.member_no},
        phones={row.phone for row in rows if row.phone},
    )
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


def _existing_purchases(pairs: list[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """(store id, receipt) → fingerprint of the purchases already recorded, of these pairs."""
    if not pairs:
        return {}
    if use_copy():
        # Pairs as two arrays, joined on the (store, receipt) unique index: one probe each.
        found = _values_any(
            f"SELECT p.store_id, p.receipt_no, p.fingerprint FROM {Purchase._meta.db_table} p "  # noqa: S608
            "JOIN unnest(%s::bigint[], %s::text[]) AS k(store_id, receipt_no) "
            "ON p.store_id = k.store_id AND p.receipt_no = k.receipt_no",
            [
                int_array(store_id for store_id, _receipt in pairs),
                text_array(receipt for _store, receipt in pairs),
            ],
        )
    else:
        found = Purchase.objects.filter(
            store_id__in={store_id for store_id, _receipt in pairs},
            receipt_no__in={receipt for _store, receipt in pairs},
        ).values_list("store_id", "receipt_no", "fingerprint")
    return {(store_id, receipt): fp for store_id, receipt, fp in found}


def _existing_keys(keys: set[str]) -> dict[str, str]:
    if not keys:
        return {}
    if use_copy():
        found = _values_any(
            f"SELECT idempotency_key, fingerprint FROM {LedgerTransaction._meta.db_table} "  # noqa: S608
            "WHERE idempotency_key = ANY(%s::text[])",
            [text_array(keys)],
        )
    else:
        found = LedgerTransaction.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", "fingerprint"
        )
    return dict(found)


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


# --- Writing purchases ---------------------------------------------------------------------

# A purchase ready to write: (member id, store id, store code, receipt, occurred_at ISO,
# (year, month), amount text, channel, category, sku, fingerprint, eligible text, points).
_Prepared = tuple


def _bad_row(good: _Good, column: str, code: str, **params: Any) -> _Row:
    row = _Row(line=good[0], ref=good[3][:100])
    row.error(column, code, **params)
    return row


def _purchases_prepare(
    *, good: list[_Good], inputs: PurchaseInputs, history: bool = False
) -> tuple[list[PurchasePosting], list[_Row], int]:
    """Resolve the members of checked rows, sort out the receipts recorded before and plan
    each new purchase (`posting.purchase_plan`); (postings, bad rows, rows already
    imported). `history`: purchases imported for tiers and analytics, earning no points."""
    by_no, by_phone, tiers = _members_find(
        numbers={g[4] for g in good if g[4]}, phones={g[5] for g in good if g[5]}
    )
    existing = _existing_purchases([(g[1], g[3]) for g in good])
    active = Member.Status.ACTIVE
    rules = inputs.rules
    base_tier = inputs.base_tier
    # A category rate may count a purchase's spend several times over, never this much.
    max_eligible = purchase_amount_limit() * 1000
    facts: dict[int, MemberFacts] = {}
    prepared: list[PurchasePosting] = []
    bad: list[_Row] = []
    already = 0
    for g in good:
        (
            _line,
            store_id,
            store_code,
            receipt_no,
            member_no,
            phone,
            iso,
            _month,
            _amount_text,
            amount,
            channel,
            category,
            sku,
        ) = g
        if member_no:
            ref = by_no.get(member_no)
            if ref is None:
                bad.append(_bad_row(g, "member_no", "member_unknown", value=member_no[:40]))
                continue
        else:
            ref = by_phone.get(phone)
            if ref is None:
                bad.append(_bad_row(g, "phone", "phone_unknown", value=phone))
                continue
        member = facts.get(ref[0])
        if member is None:
            tier = tiers.get(ref[0])
            member = facts[ref[0]] = MemberFacts(
                member_id=ref[0],
                member_no=ref[1],
                active=ref[3] == active,
                birthday_month=birthday_month_of(ref[2]),
                # A level may earn ×0, which is not "no tier".
                tier_multiplier=base_tier if tier is None else tier,
            )
        occurred_at = datetime.datetime.fromisoformat(iso)
        promotions = ()
        if inputs.per_row and not history:
            promotions = inputs.promotions(
                member_ref=ref,
                store_code=store_code,
                channel=channel,
                occurred_at=occurred_at,
                category=category,
            )
        posting = purchase_plan(
            member=member,
            store_id=store_id,
            store_code=store_code,
            receipt_no=receipt_no,
            channel=channel,
            occurred_at=occurred_at,
            occurred_iso=iso,
            amount=amount,
            lines=(
                (PlannedLine(sku=sku, category=category, quantity=_ONE, amount=amount),)
                if sku or category
                else ()
            ),
            rules=rules,
            promotions=promotions,
            history=history,
        )
        if existing:
            found = existing.get((store_id, receipt_no))
            if found is not None:
                if found == posting.fingerprint:
                    already += 1
                else:
                    bad.append(_bad_row(g, "receipt_no", "receipt_conflict", value=receipt_no))
                continue
        # Checked after the replay lookup, as at the till.
        if not member.active:
            bad.append(_bad_row(g, "member_no", "member_inactive", member_no=ref[1]))
            continue
        if posting.points > MAX_POINTS or posting.eligible_amount > max_eligible:
            # Only an administrator's rate or promotion gone wrong earns this much: the
            # row's error, not a number too large for its column.
            bad.append(
                _bad_row(g, "amount", "points_too_many", points=posting.points, max=MAX_POINTS)
            )
            continue
        prepared.append(posting)
    return prepared, bad, already


def purchases_post_batch(
    *,
    purchases: list[PurchasePosting],
    actor_id: int | None,
    now: datetime.datetime,
) -> int:
    """Write planned purchases with their points and qualifying activity through the one
    posting writer (`posting.writers.postings_write`); inside the caller's transaction.
    Returns the points posted. Tier upgrades are left to the nightly evaluation."""
    if not purchases:
        return 0
    if not connection.in_atomic_block:
        raise TransactionManagementError("purchases_post_batch needs the caller's transaction")
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    # By member (file order within one): the rows of one member meet the same index pages
    # one after the other, and the ids drawn as they arrive follow that order too.
    purchases = sorted(purchases, key=attrgetter("member_id"))
    outcomes = postings_write(postings=purchases, now=now, actor=actor, upgrades=False)
    return sum(
        posting.points
        for posting, outcome in zip(purchases, outcomes, strict=True)
        if outcome.outcome == CREATED
    )


# --- Importing ------------------------------------------------------------------------------


@dataclass
class _BatchResult:
    created: int = 0
    existing: int = 0
    bad_lines: int = 0
    points: int = 0


class _Importer:
    def __init__(
        self, *, points_import: PointsImport, progress: ProgressCallback | None, writers: int
    ) -> None:
        self.points_import = points_import
        self.kind = points_import.kind
        self.progress = progress
        self.actor_id = points_import.actor_id
        self.now = timezone.now()
        self.processed = self.created = self.existing = self.bad = self.points = 0
        self.started = time.monotonic()
        self.inputs: PurchaseInputs | None = None
        # Writer threads have connections of their own, which cannot see rows the caller
        # has not committed: inside a transaction (tests, mostly) the caller's thread
        # writes alone. SQLite takes one writer at a time anyway.
        self.writers = 1 if connection.in_atomic_block or not use_copy() else max(1, writers)
        self.lock = threading.Lock()
        self.failure: BaseException | None = None

    def run(self, content: bytes) -> None:
        header, records, nul = _read_file(content, self.kind)
        stores = {code.upper(): (pk, code) for pk, code in Store.objects.values_list("id", "code")}
        checker = _Checker(
            kind=self.kind,
            header=header,
            stores=stores,
            categories=frozenset(Category.objects.values_list("code", flat=True)),
            nul=nul,
        )
        self.now = checker.now
        if self.kind == PointsImport.Kind.PURCHASES:
            self.inputs = PurchaseInputs()
        reader = _Reader(records=records, checker=checker, parts=self.writers)
        with bulk_python():
            reader.start()
            try:
                if self.writers == 1:
                    for batch in reader.batches():
                        self._flush(batch)
                    return
                threads = [
                    threading.Thread(
                        target=self._writer,
                        args=(reader, part),
                        name=f"points-import-writer-{part}",
                    )
                    for part in range(self.writers)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                if self.failure is not None:
                    raise self.failure
            finally:
                reader.close()

    def _writer(self, reader: _Reader, part: int) -> None:
        """One writer thread: the batches of its members, on its own connection."""
        try:
            for batch in reader.batches(part):
                self._flush(batch)
        except BaseException as exc:  # raised by the main thread once all have stopped
            with self.lock:
                self.failure = self.failure or exc
            reader.stop.set()
        finally:
            connection.close()

    def _flush(self, batch: _Batch) -> None:
        result = self._write_split(batch)
        with self.lock:
            self.processed += batch.size
            self.created += result.created
            self.existing += result.existing
            self.bad += result.bad_lines
            self.points += result.points
            if self.progress is not None:
                self.progress(self._progress())

    def _write_split(self, batch: _Batch) -> _BatchResult:
        """Write a batch; one whose values the database refuses is written in halves.

        The row checker keeps every value the database would refuse from a batch; should
        one get past it all the same, the batch's transaction rolls back and its halves are
        written on their own, down to the row the database refuses, which is reported as
        that row's error: the run goes on, and no batch is ever written in part.
        """
        try:
            return self._write_retrying(batch)
        except (DataError, OverflowError) as exc:
            good = batch.good
            if not good:
                raise
            if len(good) == 1:
                row = good[0]
                line, ref = (row[0], row[3]) if type(row) is tuple else (row.line, row.ref)
                refused = _Row(line=line, ref=text_without_nul(ref)[:100])
                refused.error("", "row_refused", reason=refusal_reason(exc))
                return self._write_retrying(
                    _Batch(size=batch.size, good=[], bad=[*batch.bad, refused])
                )
            middle = len(good) // 2
            first = self._write_split(
                _Batch(size=middle + len(batch.bad), good=good[:middle], bad=batch.bad)
            )
            second = self._write_split(_Batch(size=len(good) - middle, good=good[middle:], bad=[]))
            return _BatchResult(
                created=first.created + second.created,
                existing=first.existing + second.existing,
                bad_lines=first.bad_lines + second.bad_lines,
                points=first.points + second.points,
            )

    def _write_retrying(self, batch: _Batch) -> _BatchResult:
        for attempt in range(3):
            try:
                with transaction.atomic():
                    return self._write(batch)
            except IntegrityError:
                # A till recorded one of these receipts after our check: the batch was rolled
                # back whole; check it again (nothing of the attempt is kept).
                if attempt == 2:
                    raise
            except OperationalError as exc:
                # The other writer created an account this batch needs at the same moment
                # (a member's rows can reach both writers): PostgreSQL broke the deadlock by
                # rolling this batch back whole; write it again.
                if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) != "40P01":
                    raise
        raise AssertionError("unreachable")

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

    def _write(self, batch: _Batch) -> _BatchResult:
        result = _BatchResult()
        if use_copy():
            with connection.cursor() as cursor:
                # Index probes, not scans of tables that grow with every import; and no JIT,
                # which that makes look worth seconds of compiling per batch.
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("SET LOCAL jit = off")
        if self.kind == PointsImport.Kind.PURCHASES:
            bad = self._purchases(batch.good, result)
        else:
            bad = self._balances(batch.good, result)
        bad.extend(batch.bad)
        result.bad_lines = len(bad)
        PointsImportError.objects.bulk_create(
            [
                PointsImportError(
                    points_import_id=self.points_import.pk,
                    line=row.line,
                    ref=row.ref,
                    column=column,
                    code=code,
                    params=params,
                )
                for row in bad
                for column, code, params in row.errors
            ],
            batch_size=1000,
        )
        PointsImport.objects.filter(pk=self.points_import.pk).update(
            processed_rows=F("processed_rows") + batch.size,
            created_count=F("created_count") + result.created,
            existing_count=F("existing_count") + result.existing,
            bad_count=F("bad_count") + result.bad_lines,
            points_posted=F("points_posted") + result.points,
        )
        return result

    def _purchases(self, good: list[_Good], result: _BatchResult) -> list[_Row]:
        inputs = self.inputs
        assert inputs is not None
        prepared, bad, result.existing = _purchases_prepare(good=good, inputs=inputs)
        result.points = purchases_post_batch(
            purchases=prepared, actor_id=self.actor_id, now=self.now
        )
        result.created = len(prepared)
        return bad

    def _balances(self, rows: list[_Row], result: _BatchResult) -> list[_Row]:
        for row in rows:
            row.errors = []
            row.member_id = 0
            row.member_ref = None
        _resolve_members(rows)
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
        points_credit_bulk(
            credits=credits,
            counter_kind=Account.Kind.ISSUANCE,
            actor_id=self.actor_id,
            now=self.now,
            accounts=accounts,
        )
        result.points = sum(credit.points for credit in credits)
        result.created = len(credits)
        return [row for row in rows if row.errors]


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
    header, records, _nul = _read_file(content, kind)
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
        file_name=text_without_nul(os.path.basename(file_name))[:255] or f"{kind}.csv",
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
    writers: int = WRITERS,
) -> PointsImport:
    """Import the rows of a started import; safe to call twice (a finished run is kept).

    A run interrupted part-way starts again from the top: the batches it committed are found
    by receipt / source_id and counted as already imported. On PostgreSQL `writers`
    connections write batches side by side (each batch still one transaction).
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
    importer = _Importer(points_import=points_import, progress=progress, writers=writers)
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
    writers: int = WRITERS,
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
    return points_import_run(
        points_import_id=points_import.pk, content=content, progress=progress, writers=writers
    )


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
