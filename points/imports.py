"""CSV imports for points: purchases from the tills' history, opening balances from an old system.

The two kinds of the one import framework (`core.imports`: decoding, the reading thread,
writer connections, batch halving, progress, the run's counters, pages and command): this
module supplies their columns, row checker and batch writer (`PURCHASE_IMPORT`,
`BALANCE_IMPORT`, registered by the app). Each batch is one transaction that writes the
good rows, the bad rows' errors and the progress counters.

Purchases (`store, receipt_no, member_no|phone, occurred_at, amount, channel?, category?,
sku?`) are idempotent by store + receipt number: a receipt already recorded with the same
details (the same fingerprint `purchase_record` computes) counts as "already imported", with
other details it is a bad row. Each purchase earns what it would at the till: base rate,
category rate (a row's category is its one line), the member's tier multiplier and the
birthday month (or, when the campaigns app has registered promotions, theirs), rounded down.
Each one is written with its ledger transaction, two entries summing to zero, its lot
(after any debt is paid, as `ledger._credit` does) and its `tiers.QualifyingActivity` row
(spend = amount: the file carries no points used as payment); the nightly tier job upgrades
the members from those rows. History imports (`--history`, the run's option) write the
purchases, their lines and qualifying activity (points 0) and nothing in the ledger: their
points come over as opening balances. Simplifications, on purpose:

- the tier is the member's tier when the batch is written (the till's, at that moment); an
  imported purchase does not upgrade the member at once, the nightly tier job does;
- no referral bonus: the history of an old system is not a referee's first purchase here;
- no points used as payment: the file carries what was paid, not how.

On PostgreSQL a batch costs a few statements, whatever its size: the rows are checked and
planned in Python (`posting.purchase_plan`: points, key, fingerprint, expiry), then the one
posting writer stores the plans (`posting.postings_write`: ONE set-based statement for the
purchases, lines, transactions, entries, lots and account totals; for a history batch,
which moves no points, the same purchase and line rows with COPY) and the qualifying
activity (one COPY). The database's share is most of the work (about 30 index entries and
a dozen foreign-key checks per earning purchase), so `WRITERS` connections write batches
side by side, the rows dealt out by member so that they seldom wait for each other's
account locks.

Imports take older dates than the till, from `IMPORT_EARLIEST_DATE` (1990-01-01) to now, and
amounts up to the till's `POINTS_PURCHASE_MAX_AMOUNT`; a purchase earns at most `MAX_POINTS`.
Every value out of bounds (or holding a NUL, or past the csv module's field limit) is its
row's error, found by the checker before anything reaches COPY or the ORM; a row the
database refuses all the same is written around and reported (`core.imports.runner`).

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
import re
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.bulk import text_array, use_copy
from core.imports import (
    Batch,
    BatchResult,
    Header,
    ImportKind,
    ImportPage,
    OverlongLine,
    Problem,
    cell_date,
    cell_datetime,
    text_without_nul,
)
from core.models import ImportRun
from members.imports import import_phone_normalize, members_matching
from members.models import Member, Store, User
from members.numbers import InvalidPhone
from tiers.models import MemberTier, TierLevel
from tiers.selectors import tier_levels

from . import earning
from .earning import PurchaseContext, earning_rules
from .ledger import BUSINESS_TZ, system_account
from .ledger_bulk import (
    BulkCredit,
    accounts_lock,
    points_credit_bulk,
)
from .models import (
    Account,
    Category,
    LedgerTransaction,
    Purchase,
    PurchaseLine,
)
from .posting import MemberFacts, PlannedLine, PurchasePosting, birthday_month_of, purchase_plan
from .posting.writers import CONFLICT, CREATED, REPLAYED, PostingOutcome, postings_write
from .purchase_limits import purchase_amount_limit
from .services import CENT

# PostgreSQL connections writing batches side by side: the database's work per purchase is
# several times the Python's, and a batch's statements use one core.
WRITERS = 2
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
PURCHASES = "purchases"
BALANCES = "balances"
COLUMNS = {PURCHASES: PURCHASE_COLUMNS, BALANCES: BALANCE_COLUMNS}

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
        header: Header,
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
            ref = cells[1] if self.kind == PURCHASES else cells[0]
            row = _Row(line=line, ref=text_without_nul(ref)[:100])
            for name, value in zip(self.names, cells, strict=True):
                if "\x00" in value:
                    row.error(name, "nul_character", name=name)
            return row
        if self.kind == PURCHASES:
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
            row.occurred_at = cell_datetime(occurred_at, self.tz)
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
            day = cell_date(expires_on)
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
            day = cell_date(earned_on)
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
        found = members_matching(
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
) -> tuple[list[tuple[PurchasePosting, _Good]], list[_Row]]:
    """Resolve the members of checked rows and plan each purchase (`posting.purchase_plan`);
    ((posting, row) each, bad rows). The receipts recorded before and the members not
    active are the writer's answers (`postings_write`: replayed, conflict, inactive, in the
    till's order), from its one lookup under the accounts' locks. `history`: purchases
    imported for tiers and analytics, earning no points."""
    by_no, by_phone, tiers = _members_find(
        numbers={g[4] for g in good if g[4]}, phones={g[5] for g in good if g[5]}
    )
    active = Member.Status.ACTIVE
    rules = inputs.rules
    base_tier = inputs.base_tier
    # A category rate may count a purchase's spend several times over, never this much.
    max_eligible = purchase_amount_limit() * 1000
    facts: dict[int, MemberFacts] = {}
    prepared: list[tuple[PurchasePosting, _Good]] = []
    bad: list[_Row] = []
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
        if member.active and (
            posting.points > MAX_POINTS or posting.eligible_amount > max_eligible
        ):
            # Only an administrator's rate or promotion gone wrong earns this much: the
            # row's error, not a number too large for its column.
            bad.append(
                _bad_row(g, "amount", "points_too_many", points=posting.points, max=MAX_POINTS)
            )
            continue
        prepared.append((posting, g))
    return prepared, bad


def purchases_post_batch(
    *,
    purchases: list[PurchasePosting],
    actor_id: int | None,
    now: datetime.datetime,
) -> list[PostingOutcome]:
    """Write planned purchases with their points and qualifying activity through the one
    posting writer (`posting.writers.postings_write`); inside the caller's transaction.
    The writer's outcome of each, in the order given. Tier upgrades are left to the nightly
    evaluation."""
    if not purchases:
        return []
    if not connection.in_atomic_block:
        raise TransactionManagementError("purchases_post_batch needs the caller's transaction")
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    # By member (file order within one): the rows of one member meet the same index pages
    # one after the other, and the ids drawn as they arrive follow that order too.
    order = sorted(range(len(purchases)), key=lambda index: purchases[index].member_id)
    outcomes = postings_write(
        postings=[purchases[index] for index in order], now=now, actor=actor, upgrades=False
    )
    answers: list[PostingOutcome] = [outcomes[0]] * len(purchases)
    for index, outcome in zip(order, outcomes, strict=True):
        answers[index] = outcome
    return answers


# --- The kinds --------------------------------------------------------------------------


class PointsImportJob:
    """A points import's checker and writer for one run (`core.imports.ImportJob`)."""

    kind = ""

    def __init__(self, run: ImportRun, header: Header, nul: bool) -> None:
        self.run_id = run.pk
        self.actor_id = run.actor_id
        stores = {code.upper(): (pk, code) for pk, code in Store.objects.values_list("id", "code")}
        self.checker = _Checker(
            kind=self.kind,
            header=header,
            stores=stores,
            categories=frozenset(Category.objects.values_list("code", flat=True)),
            nul=nul,
        )
        self.check = self.checker.check
        self.now = self.checker.now
        # The issuance account, the other side of every earning, exists (committed, outside
        # a caller's transaction) before any writer's statement runs: two writers never race
        # to make it.
        system_account(Account.Kind.ISSUANCE)

    @staticmethod
    def deal(row: _Good | _Row) -> tuple[bool, Any]:
        # The rows of one member go to one writer, so two writers seldom want one account.
        if type(row) is _Row:
            if row.errors:
                return True, None
            return False, row.member_no or row.phone
        return False, row[4] or row[5]

    @staticmethod
    def problem(row: _Row) -> Problem:
        return row.line, row.ref, row.errors

    @staticmethod
    def ident(row: _Good | _Row) -> tuple[int, str]:
        return (row[0], row[3]) if type(row) is tuple else (row.line, row.ref)

    def write(self, batch: Batch, *, attempt: int, parallel: bool) -> BatchResult:
        if use_copy():
            with connection.cursor() as cursor:
                # Index probes, not scans of tables that grow with every import; and no JIT,
                # which that makes look worth seconds of compiling per batch.
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("SET LOCAL jit = off")
        result = BatchResult()
        bad = self._write(batch.good, result)
        result.problems = [(row.line, row.ref, row.errors) for row in bad]
        return result

    def _write(self, good: list[Any], result: BatchResult) -> list[_Row]:
        raise NotImplementedError


class _PurchaseJob(PointsImportJob):
    kind = PURCHASES

    def __init__(self, run: ImportRun, header: Header, nul: bool) -> None:
        super().__init__(run, header, nul)
        # History: the purchases count for tiers and analytics and earn nothing here.
        self.history = run.history
        self.inputs = PurchaseInputs()

    def _write(self, good: list[_Good], result: BatchResult) -> list[_Row]:
        prepared, bad = _purchases_prepare(good=good, inputs=self.inputs, history=self.history)
        outcomes = purchases_post_batch(
            purchases=[posting for posting, _g in prepared], actor_id=self.actor_id, now=self.now
        )
        for (posting, g), outcome in zip(prepared, outcomes, strict=True):
            if outcome.outcome == CREATED:
                result.created += 1
                result.points += posting.points
            elif outcome.outcome == REPLAYED:
                result.existing += 1
            elif outcome.outcome == CONFLICT:
                bad.append(_bad_row(g, "receipt_no", "receipt_conflict", value=g[3]))
            else:  # inactive
                bad.append(_bad_row(g, "member_no", "member_inactive", member_no=posting.member_no))
        return bad


class _BalanceJob(PointsImportJob):
    kind = BALANCES

    def _write(self, rows: list[_Row], result: BatchResult) -> list[_Row]:
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


PURCHASE_IMPORT = ImportKind(
    name=PURCHASES,
    label=_("Purchases"),
    columns=PURCHASE_COLUMNS,
    one_of=("member_no", "phone"),
    messages=MESSAGES,
    permission="points.import_points",
    job=_PurchaseJob,
    ref_column="receipt_no",
    audit_action="points.import_purchases",
    posts_points=True,
    writers=WRITERS,
    page=ImportPage(
        title=_("Import purchases from CSV"),
        explain=_(
            "Every row is checked. Good rows are recorded as purchases and earn points by the "
            "earning rules (imported as history, they earn none); bad rows are listed with "
            "their line number and reason and nothing "
            "of them is written. A receipt imported before is skipped, so you can fix the bad "
            "rows and upload the same file again."
        ),
        example=(
            "store,receipt_no,member_no,phone,occurred_at,amount,channel,category,sku\n"
            "SH001,R20260410-0001,M1234567890,,2026-04-10T14:05:00,128.50,store,cosmetics,LIP01"
        ),
        options=(
            (
                "history",
                _("Import as history"),
                _(
                    "Purchases count for tiers and analytics, earn no points — bring balances "
                    "with the opening-balance import."
                ),
            ),
        ),
        max_upload_mb=200,
    ),
)
BALANCE_IMPORT = ImportKind(
    name=BALANCES,
    label=_("Opening balances"),
    columns=BALANCE_COLUMNS,
    one_of=("member_no", "phone"),
    messages=MESSAGES,
    permission="points.import_points",
    job=_BalanceJob,
    ref_column="source_id",
    audit_action="points.import_balances",
    posts_points=True,
    writers=WRITERS,
    page=ImportPage(
        title=_("Import opening point balances from CSV"),
        explain=_(
            "Every row is checked. Each good row adds its points to the member as one lot "
            "that expires at the end of expires_on (Beijing time); bad rows are listed with "
            "their line number and reason and nothing of them is written. A source_id "
            "imported before is skipped, so you can fix the bad rows and upload the same "
            "file again."
        ),
        example=(
            "source_id,member_no,phone,points,expires_on,earned_on\n"
            "OLD-000123,,13812345678,2500,2027-06-30,2026-06-01"
        ),
        max_upload_mb=200,
    ),
)
