"""CSV import of members from a previous system: parse, validate every row, write in batches.

The file's `source_id` (the old system's id) is kept in `Member.import_source_id` and is the
idempotency key: a row whose source_id is already a member is counted as "already imported"
and left alone, so running the same file again changes nothing.

Every row is checked; good rows are written and each bad row is reported with its line number
and reason. Work is set-based so a large file imports at tens of thousands of rows a second:
rows are read in batches of `BATCH_SIZE`; per batch ONE query finds the source_ids, phones
and e-mails that already exist, one query checks the freshly drawn member numbers and referral
codes, and one transaction writes the members, their consent events, the batch's error rows
and the progress counters. On PostgreSQL the members and consent events go in through COPY.

A bad value is its row's error, never a value the database refuses half-way through a batch:
the checker bounds every cell (lengths, dates from `IMPORT_EARLIEST_DATE` to now, no NUL,
which PostgreSQL stores nowhere, no field past the csv module's limit). Should the database
refuse a row all the same, the batch is written in halves down to that row, which is
reported (`core.imports.runner.Importer._write_split`).

The framework (decoding, the reading thread, writer connections, batch halving, progress,
the run's counters, pages and command) is `core.imports`; this module supplies the member
kind's columns, row checker and batch writer (`MEMBER_IMPORT`, registered by the app).
"""

from __future__ import annotations

import csv
import datetime
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.bulk import COPY_NULL, copy_escape, copy_value, text_array
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

from .models import ConsentEvent, Member, Store
from .numbers import InvalidPhone, member_no_from_digits, member_nos_from_digits, phone_normalize
from .services import REFERRAL_ALPHABET, birthday_problem

# (column, required, what it holds) — the upload page and the command's help list these.
COLUMNS: tuple[tuple[str, bool, Any], ...] = (
    ("source_id", True, _("The member's id in the previous system; re-importing skips it.")),
    ("phone", True, _("Mobile phone, e.g. 13812345678 or +86 138 1234 5678.")),
    ("name", True, _("Full name.")),
    ("email", False, _("E-mail address.")),
    ("gender", False, _("F, M, O or blank; 女 and 男 are understood too.")),
    ("birthday", False, _("YYYY-MM-DD.")),
    ("city", False, _("City.")),
    ("home_store", False, _("Store code, e.g. SH001.")),
    (
        "enrolled_at",
        False,
        _(
            "YYYY-MM-DD or an ISO date and time; Beijing time unless an offset is given. "
            "Blank: the time of the import."
        ),
    ),
    ("consent_sms", False, _("SMS marketing consent: 1/0, true/false, yes/no, 是/否. Blank: no.")),
    ("consent_email", False, _("E-mail marketing consent, as consent_sms. Blank: no.")),
)
COLUMN_NAMES = tuple(name for name, _required, _help in COLUMNS)
REQUIRED_COLUMNS = tuple(name for name, required, _help in COLUMNS if required)

SOURCE_ID_MAX = Member._meta.get_field("import_source_id").max_length
NAME_MAX = Member._meta.get_field("name").max_length


CITY_MAX = Member._meta.get_field("city").max_length
EMAIL_MAX = Member._meta.get_field("email").max_length

# The message for each problem code, formatted with the error's params when shown, so the
# report reads in the language of whoever looks at it.
MESSAGES: dict[str, Any] = {
    "field_count": _("The line has %(found)s fields but the header has %(expected)s."),
    "source_id_required": _("source_id is missing."),
    "source_id_too_long": _("source_id is longer than %(max)s characters."),
    "source_id_duplicate": _("The same source_id is on line %(line)s."),
    "phone_required": _("phone is missing."),
    "phone_invalid": _("“%(value)s” is not a valid mobile phone number."),
    "phone_duplicate": _("The same phone number is on line %(line)s."),
    "phone_taken": _("The phone number already belongs to member %(member_no)s."),
    "name_required": _("name is missing."),
    "name_too_long": _("name is longer than %(max)s characters."),
    "email_invalid": _("“%(value)s” is not a valid e-mail address."),
    "email_duplicate": _("The same e-mail address is on line %(line)s."),
    "email_taken": _("The e-mail address already belongs to member %(member_no)s."),
    "gender_invalid": _("“%(value)s” is not a gender: use F, M, O, 女, 男 or leave it blank."),
    "date_invalid": _("“%(value)s” is not a date in the form YYYY-MM-DD."),
    "birthday_out_of_range": _(
        "The birthday %(value)s is in the future or too early (before 1900 or over 120 years ago)."
    ),
    "datetime_invalid": _("“%(value)s” is not a date (YYYY-MM-DD) or ISO date and time."),
    "enrolled_at_future": _("The enrolment time %(value)s is in the future."),
    "enrolled_at_too_early": _("The enrolment time %(value)s is before %(earliest)s."),
    "nul_character": _("%(name)s holds a NUL character (\\0), which cannot be stored."),
    "field_too_long": _("A field of this line is longer than %(max)s characters."),
    "row_refused": _("The database refused this row: %(reason)s"),
    "city_too_long": _("city is longer than %(max)s characters."),
    "store_unknown": _("There is no store with the code “%(value)s”."),
    "consent_invalid": _("“%(value)s” is not yes or no: use 1/0, true/false, yes/no or 是/否."),
}


# --- Checking one row -------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def _cn_mobile_fast() -> re.Pattern[str]:
    """The phone library's own rule for a Chinese mobile, as one regular expression.

    phonenumbers takes 40 µs a number, most of a row's budget. A number with an optional
    +86 or 0086 in front of eleven digits starting 1[3-9] is a mobile exactly when the
    library's metadata pattern for CN mobiles matches it and none of the patterns the
    library tries before "mobile" does (tests/members/test_import_fast_paths.py compares
    the two on made-up numbers, test_import_members.py on every prefix). Anything else
    still goes through the library.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    # A number matching one of these is classed as that type before "mobile" is tried.
    earlier = [
        f"(?:{desc.national_number_pattern})"
        for desc in (
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
        )
        if desc is not None and desc.national_number_pattern
    ]
    not_earlier = f"(?!(?:{'|'.join(earlier)})\\Z)" if earlier else ""
    mobile = metadata.mobile.national_number_pattern
    # ASCII: `\d` would also take "８", stored as typed; the library turns it into "8".
    return re.compile(f"(?:\\+86|0086)?{not_earlier}(?=(?:{mobile})\\Z)(1[3-9]\\d{{9}})", re.ASCII)


_CN_MOBILE = _cn_mobile_fast()


def import_phone_normalize(value: str) -> str:
    """`numbers.phone_normalize`, with a fast path for the common case of a Chinese mobile."""
    match = _CN_MOBILE.fullmatch(value if value.isdigit() else _PHONE_SEPARATORS.sub("", value))
    if match is not None:
        return "+86" + match[1]
    return phone_normalize(value)


# Django's own rules for the two halves of an address, compiled here: the validator reaches
# them through lazy objects and a few calls, several µs an address.
_EMAIL_USER = re.compile(validate_email.user_regex.pattern, validate_email.user_regex.flags)
_EMAIL_DOMAIN = re.compile(validate_email.domain_regex.pattern, validate_email.domain_regex.flags)


def import_email_is_valid(value: str) -> bool:
    """`validate_email` passes `value`; its regular expressions first, the validator itself
    for anything they do not accept (an address at an IP literal, "localhost", a bad one)."""
    user, at, domain = value.rpartition("@")
    if at and len(value) <= 320 and _EMAIL_USER.match(user) and _EMAIL_DOMAIN.match(domain):
        return True
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


_GENDERS = {
    "": "",
    "F": "F",
    "M": "M",
    "O": "O",
    "女": "F",
    "男": "M",
    "FEMALE": "F",
    "MALE": "M",
    "OTHER": "O",
    "其他": "O",
}
_CONSENTS = dict.fromkeys(("1", "true", "yes", "y", "t", "是"), True) | dict.fromkeys(
    ("0", "false", "no", "n", "f", "否"), False
)
_MIDNIGHT = datetime.time()


@dataclass(slots=True)
class _Row:
    line: int
    source_id: str
    phone: str = ""
    name: str = ""
    email: str | None = None
    gender: str = ""
    birthday: datetime.date | None = None
    city: str = ""
    home_store_id: int | None = None
    enrolled_at: datetime.datetime | None = None
    consent_sms: bool | None = None
    consent_email: bool | None = None
    # A list once the row has a problem; most rows never do, and need not carry one.
    errors: list[tuple[str, str, dict[str, Any]]] | tuple[()] = ()
    # PostgreSQL only, spelled by the checker for a row it found no problem with: the row's
    # own columns as COPY text, and its consent events' lines without the member id.
    copy_text: str = ""
    event_lines: tuple[str, ...] = ()

    def error(self, column: str, code: str, **params: Any) -> None:
        if self.errors:
            self.errors.append((column, code, params))
        else:
            self.errors = [(column, code, params)]

    def consents(self) -> Iterator[tuple[str, bool]]:
        # A blank cell means the old system did not say: the default "no", and no history.
        if self.consent_sms is not None:
            yield ConsentEvent.Kind.SMS.value, self.consent_sms
        if self.consent_email is not None:
            yield ConsentEvent.Kind.EMAIL.value, self.consent_email


# How many birthdays and enrolment times the checker remembers in a run, by the cell's
# text: a file repeats the same few thousand days, so each is parsed and checked once; the
# bound keeps a file full of distinct times of day from filling the memory.
_DATES_REMEMBERED = 100_000


class MemberRowChecker:
    """Turns a CSV record into a `_Row`, noting every problem found in the row itself.

    With a COPY layout (PostgreSQL) it also spells a row with no problem for COPY.
    """

    def __init__(
        self,
        *,
        header: Header,
        stores: dict[str, int],
        now: datetime.datetime,
        layout: _CopyLayout | None = None,
        nul: bool = False,
    ):
        self.width = header.width
        self.nul = nul  # the file holds a NUL somewhere: every row is looked at for one
        # Absent optional columns read the empty cell appended after the last field.
        self.cells = itemgetter(
            *(header.positions.get(name, header.width) for name in COLUMN_NAMES)
        )
        self.stores = stores
        self.now = now
        self.today = timezone.localdate(now)
        self.zone = ZoneInfo(settings.TIME_ZONE)
        # Times are compared with now, and written to COPY, in UTC: that asks their time
        # zone for its offset once, where comparing with another zone's asks it each time.
        self.now_utc = now.astimezone(datetime.UTC)
        self.earliest = datetime.datetime.combine(
            settings.IMPORT_EARLIEST_DATE, _MIDNIGHT, self.zone
        )
        self.earliest_text = settings.IMPORT_EARLIEST_DATE.isoformat()
        self.layout = layout
        # cell text → (value, problem code or None, COPY text)
        self.birthdays: dict[str, tuple[datetime.date | None, str | None, str]] = {}
        self.moments: dict[str, tuple[datetime.datetime | None, str | None, str]] = {}

    def _birthday(self, text: str) -> tuple[datetime.date | None, str | None, str]:
        day = cell_date(text)
        if day is None:
            found = (None, "date_invalid", "")
        elif birthday_problem(birthday=day, today=self.today):
            found = (day, "birthday_out_of_range", "")
        else:
            found = (day, None, day.isoformat())
        if len(self.birthdays) < _DATES_REMEMBERED:
            self.birthdays[text] = found
        return found

    def _moment(self, text: str) -> tuple[datetime.datetime | None, str | None, str]:
        moment = cell_datetime(text, self.zone)
        if moment is None:
            found = (None, "datetime_invalid", "")
        elif moment < self.earliest:
            found = (moment, "enrolled_at_too_early", "")
        else:
            try:
                utc = moment.astimezone(datetime.UTC)
            except OverflowError:  # in UTC before the year 1 or after 9999
                future, copy_text = moment > self.now, moment.isoformat()
            else:
                future, copy_text = utc > self.now_utc, utc.isoformat()
            found = (moment, "enrolled_at_future", "") if future else (moment, None, copy_text)
        if len(self.moments) < _DATES_REMEMBERED:
            self.moments[text] = found
        return found

    def check(self, line: int, fields: list[str]) -> _Row:
        # Trailing empty cells (some spreadsheets add them) are fine; anything else that
        # does not line up with the header is a broken line, not a member.
        width = self.width
        if type(fields) is OverlongLine:
            row = _Row(line, "")
            row.error("", "field_too_long", max=csv.field_size_limit())
            return row
        if len(fields) != width and (
            len(fields) < width or any(value.strip() for value in fields[width:])
        ):
            source_id = text_without_nul(fields[0].strip()) if fields else ""
            row = _Row(line, source_id)
            row.error("", "field_count", found=len(fields), expected=width)
            return row
        fields.append("")
        cells = self.cells(fields)
        if self.nul and any("\x00" in value for value in cells):
            return self._nul_row(line, cells)
        (
            source_id, phone, name, email, gender, birthday, city, store, enrolled_at,
            consent_sms, consent_email,
        ) = map(str.strip, cells)  # fmt: skip
        row = _Row(line, source_id, "", name, None, "", None, city)

        if not source_id:
            row.error("source_id", "source_id_required")
        elif len(source_id) > SOURCE_ID_MAX:
            row.error("source_id", "source_id_too_long", max=SOURCE_ID_MAX)

        if not phone:
            row.error("phone", "phone_required")
        else:
            try:
                row.phone = import_phone_normalize(phone)
            except InvalidPhone:
                row.error("phone", "phone_invalid", value=phone[:40])

        if not name:
            row.error("name", "name_required")
        elif len(name) > NAME_MAX:
            row.error("name", "name_too_long", max=NAME_MAX)

        if email:
            email = email.lower()
            if len(email) <= EMAIL_MAX and import_email_is_valid(email):
                row.email = email
            else:
                row.error("email", "email_invalid", value=email[:80])

        if gender:
            code = _GENDERS.get(gender.upper())
            if code is None:
                row.error("gender", "gender_invalid", value=gender[:20])
            else:
                row.gender = code

        birthday_text = COPY_NULL
        if birthday:
            row.birthday, problem, birthday_text = self.birthdays.get(birthday) or self._birthday(
                birthday
            )
            if problem == "date_invalid":
                row.error("birthday", problem, value=birthday[:40])
            elif problem is not None:
                row.error("birthday", problem, value=birthday)

        if len(city) > CITY_MAX:
            row.error("city", "city_too_long", max=CITY_MAX)

        if store:
            row.home_store_id = self.stores.get(store.upper())
            if row.home_store_id is None:
                row.error("home_store", "store_unknown", value=store[:40])

        enrolled_text = ""
        if enrolled_at:
            row.enrolled_at, problem, enrolled_text = self.moments.get(enrolled_at) or self._moment(
                enrolled_at
            )
            if problem == "datetime_invalid":
                row.error("enrolled_at", problem, value=enrolled_at[:40])
            elif problem == "enrolled_at_too_early":
                row.error("enrolled_at", problem, value=enrolled_at, earliest=self.earliest_text)
            elif problem is not None:
                row.error("enrolled_at", problem, value=enrolled_at)

        if consent_sms:
            row.consent_sms = _CONSENTS.get(consent_sms.lower())
            if row.consent_sms is None:
                row.error("consent_sms", "consent_invalid", value=consent_sms[:20])
        if consent_email:
            row.consent_email = _CONSENTS.get(consent_email.lower())
            if row.consent_email is None:
                row.error("consent_email", "consent_invalid", value=consent_email[:20])

        if self.layout is not None and not row.errors:
            self.layout.render(row, birthday=birthday_text, enrolled_at=enrolled_text)
        return row

    @staticmethod
    def _nul_row(line: int, cells: tuple[str, ...]) -> _Row:
        """A row with a NUL: that is its error, in each column that holds one (nothing of
        it reaches the database, which stores no NUL, nor its other checks)."""
        row = _Row(line, text_without_nul(cells[0].strip()))
        for name, value in zip(COLUMN_NAMES, cells, strict=True):
            if "\x00" in value:
                row.error(name, "nul_character", name=name)
        return row


# --- COPY text (PostgreSQL) -------------------------------------------------------------

# Columns the import fills itself, in COPY order: first the ones drawn per batch (id and
# numbers), then the row's own (spelled by the checker), then the run's constants.
_DRAWN_COLUMNS = ("id", "member_no", "referral_code")
_ROW_COLUMNS = (
    "import_source_id", "phone", "email", "name", "gender", "birthday", "city",
    "home_store_id", "enrolled_at", "consent_sms", "consent_email",
)  # fmt: skip
_RUN_COLUMNS = ("enrolment_channel", "enrolled_by_id", "status", "updated_at")


class _CopyLayout:
    """How this run's members and consent events are spelled for COPY.

    Columns the import does not fill take their model default, so a field added to Member
    later is still written the way the ORM would write it.
    """

    def __init__(self, *, actor_id: int | None, now: datetime.datetime) -> None:
        fields = {f.attname: f for f in Member._meta.concrete_fields}
        own = {*_DRAWN_COLUMNS, *_ROW_COLUMNS, *_RUN_COLUMNS}
        rest = [name for name in fields if name not in own]
        run_values = [Member.Channel.IMPORT.value, actor_id, Member.Status.ACTIVE.value, now]
        rest_values = [fields[name].get_default() for name in rest]
        quote = connection.ops.quote_name
        self.table = quote(Member._meta.db_table)
        self.columns = ", ".join(
            quote(fields[name].column)
            for name in (*_DRAWN_COLUMNS, *_ROW_COLUMNS, *_RUN_COLUMNS, *rest)
        )
        # The text of the columns after the row's own, the same for every member.
        self.tail = "\t".join(copy_value(value) for value in (*run_values, *rest_values))
        self.event_table = quote(ConsentEvent._meta.db_table)
        event_tail = "\t".join(
            copy_value(value) for value in ("", ConsentEvent.Source.IMPORT.value, actor_id, now)
        )
        self.event_columns = "member_id, kind, granted, version, source, actor_id, recorded_at"
        # A row's event lines by its (consent_sms, consent_email); a blank cell means the
        # old system did not say: the default "no", and no history for it.
        line = {
            (kind, granted): f"{kind}\t{'t' if granted else 'f'}\t{event_tail}\n"
            for kind in (ConsentEvent.Kind.SMS.value, ConsentEvent.Kind.EMAIL.value)
            for granted in (True, False)
        }
        self.event_lines = {
            (sms, email): tuple(
                line[kind, granted]
                for kind, granted in (
                    (ConsentEvent.Kind.SMS.value, sms),
                    (ConsentEvent.Kind.EMAIL.value, email),
                )
                if granted is not None
            )
            for sms in (None, True, False)
            for email in (None, True, False)
        }
        self.now_text = now.isoformat()

    def render(self, row: _Row, *, birthday: str, enrolled_at: str) -> None:
        """Set the row's COPY text (all but the drawn columns) and its events' lines.

        `birthday` and `enrolled_at` come already spelled, by the checker, which spells each
        date of a file once; a blank enrolment time is the time of the import.
        """
        source_id, email, name, city = row.source_id, row.email, row.name, row.city
        # Text from a spreadsheet hardly ever holds a tab, a backslash or a line break.
        text = f"{source_id}{email}{name}{city}"
        if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
            source_id = copy_escape(source_id)
            email = copy_escape(email) if email else None
            name = copy_escape(name)
            city = copy_escape(city)
        sms, email_consent = row.consent_sms, row.consent_email
        row.copy_text = (
            f"{source_id}\t{row.phone}\t{email or COPY_NULL}\t{name}\t{row.gender}\t"
            f"{birthday}\t{city}\t{row.home_store_id or COPY_NULL}\t"
            f"{enrolled_at or self.now_text}\t{'t' if sms else 'f'}\t"
            f"{'t' if email_consent else 'f'}"
        )
        row.event_lines = self.event_lines[sms, email_consent]


# --- Numbers for new members --------------------------------------------------------------


def members_matching(
    *, columns: tuple[str, ...], any_of: dict[str, set[str]]
) -> list[tuple[Any, ...]]:
    """`columns` of the members whose value in any `any_of` column is in its set.

    On PostgreSQL each set goes as ONE array parameter (`= ANY(%s)`): an IN list of 5,000
    placeholders costs far more to send and to plan than the lookup itself. The array is
    handed over through a sub-select, which the planner cannot look into: given the array
    itself it estimates every element against the column's statistics, as long as the
    lookup takes. Sorted, as the index is, the array needs no sorting on the server.
    """
    any_of = {column: values for column, values in any_of.items() if values}
    if not any_of:
        return []
    if connection.vendor != "postgresql":
        condition = Q()
        for column, values in any_of.items():
            condition |= Q(**{f"{column}__in": values})
        return list(Member.objects.filter(condition).values_list(*columns))
    quote = connection.ops.quote_name
    # Only our own column names are spliced in; every value is a parameter.
    sql = "SELECT {} FROM {} WHERE {}".format(  # noqa: S608
        ", ".join(quote(column) for column in columns),
        quote(Member._meta.db_table),
        " OR ".join(
            f"{quote(column)} = ANY(CAST((SELECT %s::text[]) AS text[]))" for column in any_of
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [text_array(sorted(values)) for values in any_of.values()])
        return cursor.fetchall()


def _member_no_draw() -> str:
    # Same format as numbers.member_no_generate, from one read of the OS random source
    # (drawing digit by digit costs 25 µs a number, too much for 200,000 of them).
    return member_no_from_digits(int.from_bytes(os.urandom(8), "big") % 10**10)


def _referral_code_draw() -> str:
    bits = int.from_bytes(os.urandom(5), "big")  # 40 bits: eight 5-bit letters
    return "".join(REFERRAL_ALPHABET[(bits >> shift) & 31] for shift in range(0, 40, 5))


# One random byte a letter: 256 values, each of the 32 letters spelled by eight of them, so
# every letter is as likely as with `_referral_code_draw`'s five bits.
_BYTE_TO_REFERRAL = bytes(REFERRAL_ALPHABET.encode("ascii")[byte % 32] for byte in range(256))


def numbers_draw(count: int) -> tuple[set[str], set[str]]:
    """`count` member numbers and referral codes, drawn as `_member_no_draw` and
    `_referral_code_draw` do but from one read of the OS random source per batch."""
    member_nos: set[str] = set()
    codes: set[str] = set()
    while (need := count - len(member_nos)) > 0:
        member_nos.update(
            member_nos_from_digits(
                [number % 10**10 for number in struct.unpack(f">{need}Q", os.urandom(8 * need))]
            )
        )
    while (need := count - len(codes)) > 0:
        text = os.urandom(8 * need).translate(_BYTE_TO_REFERRAL).decode("ascii")
        codes.update(text[start : start + 8] for start in range(0, 8 * need, 8))
    return member_nos, codes


def numbers_redraw(member_nos: set[str], codes: set[str], taken: list[tuple[str, str]]) -> None:
    """Replace the numbers found `taken` by others, checked again until none is in use."""
    count = len(member_nos)
    for _round in range(20):
        for member_no, code in taken:
            member_nos.discard(member_no)
            codes.discard(code)
        fresh_nos: set[str] = set()
        while len(member_nos) + len(fresh_nos) < count:
            if (member_no := _member_no_draw()) not in member_nos:
                fresh_nos.add(member_no)
        fresh_codes: set[str] = set()
        while len(codes) + len(fresh_codes) < count:
            if (code := _referral_code_draw()) not in codes:
                fresh_codes.add(code)
        member_nos |= fresh_nos
        codes |= fresh_codes
        taken = members_matching(
            columns=("member_no", "referral_code"),
            any_of={"member_no": fresh_nos, "referral_code": fresh_codes},
        )
        if not taken:
            return
    raise RuntimeError("could not allocate member numbers")


# --- Writing a batch ------------------------------------------------------------------------


_TO_WRITER = (False, None)


class MemberImportJob:
    """The member import's checker and writer for one run (`core.imports.ImportJob`)."""

    def __init__(self, run: ImportRun, header: Header, nul: bool) -> None:
        self.run_id = run.pk
        self.actor_id = run.actor_id
        self.now = timezone.now()
        self.use_copy = connection.vendor == "postgresql"
        self.layout = _CopyLayout(actor_id=self.actor_id, now=self.now) if self.use_copy else None
        self.id_sequence = ""
        if self.use_copy:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Member._meta.db_table])
                (self.id_sequence,) = cursor.fetchone()
        stores = {code.upper(): pk for code, pk in Store.objects.values_list("code", "id")}
        self.checker = MemberRowChecker(
            header=header, stores=stores, now=self.now, layout=self.layout, nul=nul
        )
        self.seen_source: dict[str, int] = {}
        self.seen_phone: dict[str, int] = {}
        self.seen_email: dict[str, int] = {}

    def check(self, line: int, fields: list[str]) -> _Row:
        row = self.checker.check(line, fields)
        self._in_file_duplicates(row)
        return row

    @staticmethod
    def deal(row: _Row) -> tuple[bool, None]:
        # Every row goes to the writer, bad ones too: a bad line whose source_id is a member
        # already counts as imported, as on the first run. Whole batches go to the writers
        # in turn: they never clash, as every repeat in the file is marked here.
        return _TO_WRITER

    @staticmethod
    def problem(row: _Row) -> Problem:
        return row.line, row.source_id[:100], list(row.errors)

    @staticmethod
    def ident(row: _Row) -> tuple[int, str]:
        return row.line, row.source_id

    def write(self, batch: Batch, *, attempt: int, parallel: bool) -> BatchResult:
        return self._write(batch.good, check_codes=attempt > 0)

    def _in_file_duplicates(self, row: _Row) -> None:
        """Report the later line of a source_id, phone or e-mail that the file repeats.

        Every row takes part, whatever else is wrong with it, so a second run of the same
        file reports exactly the same lines.
        """
        if row.source_id:
            first = self.seen_source.setdefault(row.source_id, row.line)
            if first != row.line:
                # The same member again: that is the whole story for this line.
                row.error("source_id", "source_id_duplicate", line=first)
                return
        if row.phone:
            first = self.seen_phone.setdefault(row.phone, row.line)
            if first != row.line:
                row.error("phone", "phone_duplicate", line=first)
        if row.email:
            first = self.seen_email.setdefault(row.email, row.line)
            if first != row.line:
                row.error("email", "email_duplicate", line=first)

    def _write(self, rows: list[_Row], *, check_codes: bool) -> BatchResult:
        """Check a batch against the database and write it; the caller holds a transaction.

        Rows are not changed here, so a retry after an IntegrityError starts afresh. New
        referral codes are checked only on a retry: drawn from 32⁸ (10¹²), a batch's codes
        meet one in use about once in 200 batches with a million members, when the unique
        index refuses the batch; looking them all up first would cost a fifth of the lookup.
        """
        if self.use_copy:
            with connection.cursor() as cursor:
                # PostgreSQL prices 25,000 index probes (2 µs each) above one scan of the
                # member table, which takes longer with every member; keep it to the indexes.
                cursor.execute("SET LOCAL enable_seqscan = off")
        result = BatchResult()
        # A line whose source_id cannot be trusted (repeated in the file, too long, a broken
        # line) is bad whatever the database holds, so every run reports it the same way.
        lookup = [
            row for row in rows if row.source_id and (not row.errors or not _untrusted_source(row))
        ]
        sources = {row.source_id for row in lookup}
        phones = {row.phone for row in lookup if row.phone}
        emails = {row.email for row in lookup if row.email}
        # Numbers for every row that may be written, checked in the same query (see above
        # for the referral codes).
        member_nos, codes = numbers_draw(sum(1 for row in rows if not row.errors))
        existing_sources: set[str] = set()
        phone_owner: dict[str, str] = {}
        email_owner: dict[str, str] = {}
        taken: list[tuple[str, str]] = []
        for source_id, phone, email, member_no, code in members_matching(
            columns=("import_source_id", "phone", "email", "member_no", "referral_code"),
            any_of={
                "import_source_id": sources,
                "phone": phones,
                "email": emails,
                "member_no": member_nos,
                "referral_code": codes if check_codes else set(),
            },
        ):
            if source_id in sources:
                existing_sources.add(source_id)
            if phone in phones:
                phone_owner[phone] = member_no
            if email in emails:
                email_owner[email] = member_no
            if member_no in member_nos or code in codes:
                taken.append((member_no, code))
        if taken:
            numbers_redraw(member_nos, codes, taken)

        good: list[_Row] = []
        for row in rows:
            if row.source_id in existing_sources and not _untrusted_source(row):
                result.existing += 1
                continue
            if not row.errors and row.phone not in phone_owner and row.email not in email_owner:
                good.append(row)  # the common case, spelled out first
                continue
            errors = list(row.errors)
            # A repeat of an earlier line is reported as that, even once the earlier line's
            # member exists, so a second run gives the same report as the first.
            codes_found = {code for _column, code, _params in errors}
            if row.phone in phone_owner and "phone_duplicate" not in codes_found:
                errors.append(("phone", "phone_taken", {"member_no": phone_owner[row.phone]}))
            if row.email in email_owner and "email_duplicate" not in codes_found:
                errors.append(("email", "email_taken", {"member_no": email_owner[row.email]}))
            if not errors:
                good.append(row)
                continue
            result.problems.append((row.line, row.source_id[:100], errors))

        numbers = list(zip(member_nos, codes, strict=True))[: len(good)]
        if good:
            if self.use_copy:
                self._insert_copy(good, numbers)
            else:
                self._insert_orm(good, numbers)
        result.created = len(good)
        return result

    def _insert_orm(self, rows: list[_Row], numbers: list[tuple[str, str]]) -> None:
        members = [
            Member(
                member_no=member_no,
                referral_code=code,
                enrolment_channel=Member.Channel.IMPORT,
                enrolled_by_id=self.actor_id,
                import_source_id=row.source_id,
                phone=row.phone,
                email=row.email,
                name=row.name,
                gender=row.gender,
                birthday=row.birthday,
                city=row.city,
                home_store_id=row.home_store_id,
                enrolled_at=row.enrolled_at or self.now,
                consent_sms=bool(row.consent_sms),
                consent_email=bool(row.consent_email),
            )
            for row, (member_no, code) in zip(rows, numbers, strict=True)
        ]
        Member.objects.bulk_create(members, batch_size=1000)
        if any(member.pk is None for member in members):  # a backend that cannot return ids
            ids = dict(
                Member.objects.filter(
                    import_source_id__in=[row.source_id for row in rows]
                ).values_list("import_source_id", "id")
            )
            for member in members:
                member.pk = ids[member.import_source_id]
        ConsentEvent.objects.bulk_create(
            [
                ConsentEvent(
                    member_id=member.pk,
                    kind=kind,
                    granted=granted,
                    source=ConsentEvent.Source.IMPORT,
                    actor_id=self.actor_id,
                    recorded_at=self.now,
                )
                for member, row in zip(members, rows, strict=True)
                for kind, granted in row.consents()
            ],
            batch_size=1000,
        )

    def _insert_copy(self, rows: list[_Row], numbers: list[tuple[str, str]]) -> None:
        """PostgreSQL: COPY the members (ids drawn from their sequence first) and events."""
        layout = self.layout
        assert layout is not None
        # COPY is psycopg's own API, outside Django's cursor wrapper: map its errors (a unique
        # violation above all) to Django's so the caller's retry sees an IntegrityError.
        with connection.cursor() as cursor, connection.wrap_database_errors:
            # The sequence's name is looked up once a run: pg_get_serial_sequence() in this
            # query would be evaluated again for every row, most of the query's cost. The
            # ids come back as one text, which is all the COPY text needs of them.
            cursor.execute(
                "SELECT string_agg(nextval(%s::regclass)::text, ',') FROM generate_series(1, %s)",
                [self.id_sequence, len(rows)],
            )
            ids = cursor.fetchone()[0].split(",")
            tail = layout.tail
            members_text = "".join(
                f"{pk}\t{member_no}\t{code}\t{row.copy_text}\t{tail}\n"
                for pk, row, (member_no, code) in zip(ids, rows, numbers, strict=True)
            )
            events_text = "".join(
                f"{pk}\t{line}"
                for pk, row in zip(ids, rows, strict=True)
                if row.event_lines
                for line in row.event_lines
            )
            with cursor.copy(f"COPY {layout.table} ({layout.columns}) FROM STDIN") as copy:
                copy.write(members_text)
            if events_text:
                with cursor.copy(
                    f"COPY {layout.event_table} ({layout.event_columns}) FROM STDIN"
                ) as copy:
                    copy.write(events_text)


_UNTRUSTED_SOURCE = frozenset(
    {"source_id_duplicate", "source_id_too_long", "field_count", "nul_character"}
)


def _untrusted_source(row: _Row) -> bool:
    return any(code in _UNTRUSTED_SOURCE for _column, code, _params in row.errors)


# --- The kind -------------------------------------------------------------------------


MEMBER_IMPORT = ImportKind(
    name="members",
    label=_("Members"),
    columns=COLUMNS,
    messages=MESSAGES,
    permission="members.import_members",
    job=MemberImportJob,
    ref_column="source_id",
    audit_action="member.import",
    created_label="created",
    empty_message=_("The file has a header but no members below it."),
    page=ImportPage(
        title=_("Import members from CSV"),
        explain=_(
            "Every row is checked. Good rows are added; bad rows are listed with their line "
            "number and reason and nothing of them is written. A row whose source_id was "
            "imported before is skipped, so you can fix the bad rows and upload the same file "
            "again."
        ),
        example=(
            "source_id,phone,name,email,gender,birthday,city,home_store,enrolled_at,"
            "consent_sms,consent_email\n"
            "A-10001,13812345678,张伟,zhangwei@example.com,男,1990-05-17,上海,SH001,"
            "2019-03-08,是,否"
        ),
        max_upload_mb=100,
        created_title=_("Members created"),
    ),
)
