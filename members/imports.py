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
reported (`_Importer._write_batch`).

`member_import_start` checks the file as a whole (encoding, header, at least one row) and
raises `ImportFileError` before anything is written; `member_import_run` does the rows and
writes one audit entry for the whole run. The reads the pages need are at the end.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import gc
import hashlib
import io
import itertools
import json
import os
import queue
import re
import struct
import sys
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DataError, IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import ConsentEvent, Member, MemberImport, MemberImportError, Store, User
from .numbers import InvalidPhone, member_no_from_digits, member_nos_from_digits, phone_normalize
from .services import REFERRAL_ALPHABET, MemberError, audit_log, birthday_problem

BATCH_SIZE = 5000
MAX_ERRORS_SHOWN = 500

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


_bulk_lock = threading.Lock()
_bulk_users = 0
_bulk_saved: tuple[bool, float] = (True, 0.005)


@contextlib.contextmanager
def bulk_python() -> Iterator[None]:
    """Process settings for a bulk import, put back when the last import running ends.

    The rows hold no reference cycles, so the cyclic collector would only walk the hundreds
    of thousands of live objects again and again (a tenth of the run); and a writer whose
    batch PostgreSQL has finished would wait for the reading thread to let go of the GIL
    (5 ms by default) before it could send the next. Both settings hold for the whole
    process, and two imports may overlap in one (in-process tasks), hence the count.
    """
    global _bulk_users, _bulk_saved
    with _bulk_lock:
        if _bulk_users == 0:
            _bulk_saved = (gc.isenabled(), sys.getswitchinterval())
            gc.disable()
            sys.setswitchinterval(0.0005)
        _bulk_users += 1
    try:
        yield
    finally:
        with _bulk_lock:
            _bulk_users -= 1
            if _bulk_users == 0:
                gc_was_enabled, switch = _bulk_saved
                sys.setswitchinterval(switch)
                if gc_was_enabled:
                    gc.enable()


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


class ImportFileError(MemberError):
    """The file as a whole cannot be imported (not UTF-8 text, no header, no rows)."""


@dataclass(frozen=True)
class ImportProgress:
    processed: int
    total: int
    created: int
    existing: int
    bad: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[ImportProgress], None]


# --- Reading the file -------------------------------------------------------------------


# Zip (an .xlsx or .ods workbook), an old .xls workbook, a PDF.
_BINARY_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF")


def _decode(content: bytes) -> str:
    if not content or not content.strip():
        raise ImportFileError(gettext("The file is empty."))
    # A workbook, or UTF-16 text (every other byte NUL), is refused as a whole; a stray NUL
    # in a text file is the error of its row (the checkers report it).
    head = content[:8192]
    if head.startswith(_BINARY_SIGNATURES) or head.count(b"\x00") * 8 > len(head):
        raise ImportFileError(
            gettext("This is not a CSV file. Save the sheet as “CSV UTF-8” and upload that.")
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or (_has_two_byte_chars(content) and _reads_as_gbk(text)):
        raise ImportFileError(
            gettext(
                "The file is not UTF-8 text. In Excel choose “Save as” → “CSV UTF-8 "
                "(comma delimited)” and upload that file."
            )
        ) from None
    return text


# A character that UTF-8 spells with two bytes; GBK spells every Chinese character with two,
# and a GBK lead byte 0xC2-0xDF followed by a byte 0x80-0xBF is such a character too.
_TWO_BYTE_CHAR = re.compile("[\u0080-\u07ff]")
_CHINESE_WORD = re.compile("[\u3400-\u9fff\uf900-\ufaff]+")
_CELL_END = re.compile('[,"\r\n]')
_GBK_CELLS_LOOKED_AT = 1000
_TWO_BYTE_LEADS = bytes(range(0xC2, 0xE0))


def _has_two_byte_chars(content: bytes) -> bool:
    # A third of the time of searching the text: most files hold none (ASCII and Chinese).
    return len(content.translate(None, _TWO_BYTE_LEADS)) != len(content)


def _reads_as_gbk(text: str) -> bool:
    """Whether a file that is valid UTF-8 is really GBK (Excel's "CSV" on a Chinese Windows).

    Some Chinese characters are GBK bytes that happen to be valid UTF-8 as well: 卢梅 is
    C2 AC C3 B7 in GBK, which UTF-8 reads as "¬÷". Detectors such as charset-normalizer
    take any valid UTF-8 as UTF-8, so the cells are judged here: a cell whose non-ASCII
    characters are all two-byte UTF-8 ones, that GBK reads as Chinese, and that as UTF-8 is
    no word of one alphabet (symbols and numbers among letters, letters of several
    alphabets, or accented Latin letters without a plain one) speaks for GBK; a cell that
    GBK cannot read as Chinese, that holds Chinese already, or that is a word of one alphabet
    (Иван, Νίκος), for UTF-8, as does every word in Chinese characters.
    """
    gbk = utf8 = 0
    for index, cell in enumerate(_two_byte_cells(text)):
        if index == _GBK_CELLS_LOOKED_AT:
            break
        verdict = _cell_reads_as_gbk(cell.strip())
        if verdict is True:
            gbk += 1
        elif verdict is False:
            utf8 += 1
    if gbk <= utf8:
        return False
    # Words in Chinese characters are UTF-8 too (GBK bytes seldom read as Chinese in
    # UTF-8): one "é" among a file of Chinese names is no GBK.
    chinese = sum(1 for _word in itertools.islice(_CHINESE_WORD.finditer(text), gbk))
    return gbk > utf8 + chinese


def _two_byte_cells(text: str) -> Iterator[str]:
    """The cells (text between commas, quotes and line breaks) with a two-byte character."""
    position = 0
    while (match := _TWO_BYTE_CHAR.search(text, position)) is not None:
        start = max(text.rfind(mark, position, match.start()) for mark in ',"\r\n') + 1
        end_match = _CELL_END.search(text, match.end())
        end = len(text) if end_match is None else end_match.start()
        yield text[max(start, position) : end]
        position = end


def _cell_reads_as_gbk(cell: str) -> bool | None:
    """True: GBK; False: UTF-8; None: no telling (a cell with ASCII letters or digits, as
    "Zoë" or "café", is UTF-8 text in a Latin alphabet, or of no weight either way)."""
    if any(char.isascii() and char.isalnum() for char in cell):
        return None
    if any(_is_chinese(char) for char in cell):  # 王·五: Chinese text with a symbol
        return False
    try:
        as_gbk = cell.encode("utf-8").decode("gbk")
    except UnicodeDecodeError:
        return False
    if not all(char.isascii() or _is_chinese(char) for char in as_gbk):
        return False
    alphabets = set()
    for char in cell:
        if char.isascii():
            continue
        if unicodedata.category(char)[0] not in "LM":
            return True
        alphabets.add(unicodedata.name(char, "?").split(" ", 1)[0])
    return len(alphabets) != 1 or "LATIN" in alphabets


def _is_chinese(char: str) -> bool:
    # CJK ideographs (extension A and the unified block), compatibility ideographs, CJK
    # punctuation, full-width forms.
    return (
        "\u3400" <= char <= "\u9fff"
        or "\uf900" <= char <= "\ufaff"
        or "\u3000" <= char <= "\u303f"
        or "\uff00" <= char <= "\uffef"
    )


def text_without_nul(text: str) -> str:
    """The text with each NUL shown as ␀: PostgreSQL stores no NUL in text or JSON."""
    return text.replace("\x00", "\u2400") if "\x00" in text else text


def refusal_reason(exc: Exception) -> str:
    """The first line of a database error, for an import report."""
    return text_without_nul(str(exc).strip().split("\n", 1)[0])[:300]


class OverlongLine(list):
    """The fields of a line that the csv module could not read: a field over its limit."""


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number of the record's first line, fields), skipping blank lines."""
    lines = _plain_lines(text)
    if lines is None:
        yield from _csv_records(text)
        return
    for line, record in enumerate(lines, 1):
        if "," in record:
            yield line, record.split(",")
        elif record.strip():
            yield line, [record]


def _plain_lines(text: str) -> list[str] | None:
    """The text's lines, when each line is one record that the csv module would split at
    every comma and nowhere else: no quote character anywhere, no line over its field size
    limit. Splitting such a file ourselves takes a fifth of the csv module's time
    (tests/members/test_import_fast_paths.py compares the two)."""
    if '"' in text:
        return None
    lines = _LINE_BREAK.split(text) if "\r" in text else text.split("\n")
    if max(map(len, lines)) > csv.field_size_limit():
        return None
    return lines


def _csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    next_line = 1
    while True:
        line = next_line
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            # A field over the csv module's limit: the reader skips the rest of the line
            # and goes on; the line is reported as that row's error.
            next_line = reader.line_num + 1
            if line == 1:
                raise
            yield line, OverlongLine()
            continue
        next_line = reader.line_num + 1
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        yield line, fields


@dataclass(frozen=True)
class _Header:
    positions: dict[str, int]  # known column → index
    width: int
    columns: list[str]
    ignored: list[str]


def _header(fields: list[str]) -> _Header:
    columns = [text_without_nul(name.strip().lower()) for name in fields]
    positions: dict[str, int] = {}
    for index, name in enumerate(columns):
        if name in COLUMN_NAMES and name not in positions:
            positions[name] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    if missing:
        raise ImportFileError(
            gettext(
                "The first line must be a header naming the columns; %(missing)s missing. "
                "Required columns: %(required)s."
            )
            % {"missing": ", ".join(missing), "required": ", ".join(REQUIRED_COLUMNS)}
        )
    ignored = [name for index, name in enumerate(columns) if positions.get(name) != index]
    return _Header(positions=positions, width=len(fields), columns=columns, ignored=ignored)


def _read_text(text: str) -> tuple[_Header, Iterator[tuple[int, list[str]]]]:
    records = _records(text)
    try:
        first = next(records)
    except csv.Error:
        raise ImportFileError(gettext("This is not a CSV file.")) from None
    except StopIteration:
        raise ImportFileError(gettext("The file is empty.")) from None
    return _header(first[1]), records


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
_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")


@lru_cache(maxsize=65536)
def _parse_date(value: str) -> datetime.date | None:
    """YYYY-MM-DD (or Excel's YYYY/M/D); None when it is not a real date."""
    match = _DATE.fullmatch(value)
    if match is None:
        return None
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


_MIDNIGHT = datetime.time()


def _parse_datetime(value: str, zone: ZoneInfo) -> datetime.datetime | None:
    """A date (midnight) or ISO date and time; in `zone` unless it gives an offset."""
    # A date alone is at most ten characters; a time with a date never a date alone.
    day = _parse_date(value) if len(value) <= 10 else None
    if day is not None:
        return datetime.datetime.combine(day, _MIDNIGHT, zone)
    if not value[:1].isdigit():
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # What timezone.make_aware does, without its checks: fromisoformat gives a time
    # with a fixed offset or none.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


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


class _RowChecker:
    """Turns a CSV record into a `_Row`, noting every problem found in the row itself.

    With a COPY layout (PostgreSQL) it also spells a row with no problem for COPY.
    """

    def __init__(
        self,
        *,
        header: _Header,
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
        day = _parse_date(text)
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
        moment = _parse_datetime(text, self.zone)
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

        birthday_text = _COPY_NULL
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

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_NULL = "\\N"


def _copy_value(value: Any) -> str:
    """A value in COPY's text format: the few types a member row holds."""
    if value is None:
        return _COPY_NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime.date | int):  # datetime is a date too
        return value.isoformat() if isinstance(value, datetime.date) else str(value)
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    return str(value).translate(_COPY_ESCAPES)


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
        self.tail = "\t".join(_copy_value(value) for value in (*run_values, *rest_values))
        self.event_table = quote(ConsentEvent._meta.db_table)
        event_tail = "\t".join(
            _copy_value(value) for value in ("", ConsentEvent.Source.IMPORT.value, actor_id, now)
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
            source_id = source_id.translate(_COPY_ESCAPES)
            email = email.translate(_COPY_ESCAPES) if email else None
            name = name.translate(_COPY_ESCAPES)
            city = city.translate(_COPY_ESCAPES)
        sms, email_consent = row.consent_sms, row.consent_email
        row.copy_text = (
            f"{source_id}\t{row.phone}\t{email or _COPY_NULL}\t{name}\t{row.gender}\t"
            f"{birthday}\t{city}\t{row.home_store_id or _COPY_NULL}\t"
            f"{enrolled_at or self.now_text}\t{'t' if sms else 'f'}\t"
            f"{'t' if email_consent else 'f'}"
        )
        row.event_lines = self.event_lines[sms, email_consent]


# --- Reading thread ----------------------------------------------------------------------


class _Reader:
    """Reads, checks and de-duplicates the file's rows, a batch at a time, in a thread.

    Pure Python with no database access, so it runs while the main thread waits for
    PostgreSQL to write the previous batch (psycopg lets go of the GIL while it waits).
    """

    _DONE = object()

    def __init__(
        self,
        *,
        records: Iterator[tuple[int, list[str]]],
        checker: _RowChecker,
    ) -> None:
        self.records = records
        self.checker = checker
        self.seen_source: dict[str, int] = {}
        self.seen_phone: dict[str, int] = {}
        self.seen_email: dict[str, int] = {}
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="member-import-reader", daemon=True)

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
            check, in_file_duplicates = self.checker.check, self._in_file_duplicates
            batch: list[_Row] = []
            for line, fields in self.records:
                row = check(line, fields)
                in_file_duplicates(row)
                batch.append(row)
                if len(batch) >= BATCH_SIZE:
                    if not self._put(batch):
                        return
                    batch = []
            if batch and not self._put(batch):
                return
            self._put(self._DONE)
        except BaseException as exc:  # handed to the main thread, which raises it
            self._put(exc)

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


# --- Numbers for new members --------------------------------------------------------------


def _members_matching(
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
        cursor.execute(sql, [_pg_text_array(values) for values in any_of.values()])
        return cursor.fetchall()


def _pg_text_array(values: set[str]) -> str:
    """A PostgreSQL array literal of the strings in order, every one quoted.

    Spelled here rather than by psycopg's list adapter, which walks the list in Python
    element by element: a third of the lookup's time on the client.
    """
    ordered = sorted(values)
    text = '","'.join(ordered)
    if "\\" in text or text.count('"') != 2 * (len(ordered) - 1):  # two in each '","'
        text = '","'.join(value.replace("\\", "\\\\").replace('"', '\\"') for value in ordered)
    return '{"' + text + '"}'


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


def _numbers_draw(count: int) -> tuple[set[str], set[str]]:
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


def _numbers_redraw(member_nos: set[str], codes: set[str], taken: list[tuple[str, str]]) -> None:
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
        taken = _members_matching(
            columns=("member_no", "referral_code"),
            any_of={"member_no": fresh_nos, "referral_code": fresh_codes},
        )
        if not taken:
            return
    raise RuntimeError("could not allocate member numbers")


# --- Writing a batch ------------------------------------------------------------------------


# Connections writing batches at once on PostgreSQL (see `_Importer._run_parallel`).
WRITERS = 2


class _Writer:
    """A thread with its own database connection that writes the batches handed to it."""

    def __init__(self, write: Callable[[list[_Row]], _BatchResult]) -> None:
        self.write = write
        self.queue: queue.Queue[tuple[list[_Row], Future[_BatchResult]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="member-import-writer", daemon=True)
        self.thread.start()

    def submit(self, rows: list[_Row]) -> Future[_BatchResult]:
        done: Future[_BatchResult] = Future()
        self.queue.put((rows, done))
        return done

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def _work(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                rows, done = item
                try:
                    done.set_result(self.write(rows))
                except BaseException as exc:  # raised in the main thread by done.result()
                    done.set_exception(exc)
        finally:
            connection.close()  # this thread's own connection


@dataclass
class _BatchResult:
    created: int = 0
    existing: int = 0
    bad_lines: int = 0
    errors: list[MemberImportError] = field(default_factory=list)


class _Importer:
    def __init__(self, *, member_import: MemberImport, progress: ProgressCallback | None) -> None:
        self.member_import = member_import
        self.progress = progress
        self.actor_id = member_import.actor_id
        self.now = timezone.now()
        self.processed = self.created = self.existing = self.bad = 0
        self.started = time.monotonic()
        self.use_copy = connection.vendor == "postgresql"
        self.layout = _CopyLayout(actor_id=self.actor_id, now=self.now) if self.use_copy else None
        self.id_sequence = ""
        self.parallel = False  # batches written through connections of their own, at once

    def run(self, content: bytes) -> None:
        text = _decode(content)
        header, records = _read_text(text)
        stores = {code.upper(): pk for code, pk in Store.objects.values_list("code", "id")}
        if self.use_copy:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Member._meta.db_table])
                (self.id_sequence,) = cursor.fetchone()
        checker = _RowChecker(
            header=header, stores=stores, now=self.now, layout=self.layout, nul="\x00" in text
        )
        reader = _Reader(records=records, checker=checker)
        with bulk_python():
            # Inside a caller's transaction (a test case) other connections could not see
            # this import's row, so the batches go one by one through the caller's connection.
            self.parallel = self.use_copy and WRITERS > 1 and not connection.in_atomic_block
            if self.parallel:
                self._run_parallel(reader)
            else:
                for batch in reader.batches():
                    self._count(batch, self._write_batch(batch))

    def _run_parallel(self, reader: _Reader) -> None:
        """Write alternate batches through `WRITERS` connections of their own, at once.

        While one connection's PostgreSQL backend writes a batch, Python checks the next one
        against the database on the other: each alone leaves a core idle. Batches never
        clash: the reader marks every repeat of a source_id, phone or e-mail across the
        whole file, so no two batches write the same one, and a repeat's report does not
        depend on whether the earlier batch has committed. Counts and progress are taken
        in file order as the batches finish.
        """
        writers = [_Writer(self._write_batch) for _index in range(WRITERS)]
        pending: deque[tuple[list[_Row], Future[_BatchResult]]] = deque()
        failure: BaseException | None = None
        try:
            for index, batch in enumerate(reader.batches()):
                if len(pending) == WRITERS:
                    rows, done = pending.popleft()
                    self._count(rows, done.result())
                pending.append((batch, writers[index % WRITERS].submit(batch)))
        except BaseException as exc:
            failure = exc
        finally:
            # Every batch handed out is waited for, so the counts match what was committed.
            while pending:
                rows, done = pending.popleft()
                try:
                    self._count(rows, done.result())
                except BaseException as exc:
                    failure = failure or exc
            for writer in writers:
                writer.close()
        if failure is not None:
            raise failure

    def _write_batch(self, rows: list[_Row]) -> _BatchResult:
        """Write a batch; one whose values the database refuses is written in halves.

        The row checker keeps every value the database would refuse from a batch; should
        one get past it all the same, the batch's transaction rolls back and its halves are
        written on their own, down to the row the database refuses, which is reported as
        that row's error: the run goes on, and no batch is ever written in part.
        """
        try:
            return self._write_batch_retrying(rows)
        except (DataError, OverflowError) as exc:
            if len(rows) == 1:
                return self._write_refused(rows[0], exc)
            middle = len(rows) // 2
            first = self._write_batch(rows[:middle])
            second = self._write_batch(rows[middle:])
            return _BatchResult(
                created=first.created + second.created,
                existing=first.existing + second.existing,
                bad_lines=first.bad_lines + second.bad_lines,
                errors=[*first.errors, *second.errors],
            )

    def _write_refused(self, row: _Row, exc: Exception) -> _BatchResult:
        error = MemberImportError(
            member_import_id=self.member_import.pk,
            line=row.line,
            source_id=text_without_nul(row.source_id)[:100],
            column="",
            code="row_refused",
            params={"reason": refusal_reason(exc)},
        )
        with transaction.atomic():
            error.save()
            MemberImport.objects.filter(pk=self.member_import.pk).update(
                processed_rows=F("processed_rows") + 1, bad_count=F("bad_count") + 1
            )
        return _BatchResult(bad_lines=1, errors=[error])

    def _write_batch_retrying(self, rows: list[_Row]) -> _BatchResult:
        for attempt in range(3):
            try:
                with transaction.atomic():
                    return self._write(rows, check_codes=attempt > 0)
            except IntegrityError:
                # Someone enrolled one of these phones or e-mails (or drew one of our new
                # numbers) after our check, or a referral code was taken: the batch was
                # rolled back whole; check again, the codes too.
                if attempt == 2:
                    raise
            except OperationalError as exc:
                # Two writers that drew the same new number can wait on each other.
                if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) != "40P01":
                    raise
        raise AssertionError("unreachable")

    def _count(self, rows: list[_Row], result: _BatchResult) -> None:
        self.processed += len(rows)
        self.created += result.created
        self.existing += result.existing
        self.bad += result.bad_lines
        if self.progress is not None:
            self.progress(self._progress())

    def _progress(self) -> ImportProgress:
        return ImportProgress(
            processed=self.processed,
            total=self.member_import.total_rows,
            created=self.created,
            existing=self.existing,
            bad=self.bad,
            seconds=time.monotonic() - self.started,
        )

    def _write(self, rows: list[_Row], *, check_codes: bool) -> _BatchResult:
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
        result = _BatchResult()
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
        member_nos, codes = _numbers_draw(sum(1 for row in rows if not row.errors))
        existing_sources: set[str] = set()
        phone_owner: dict[str, str] = {}
        email_owner: dict[str, str] = {}
        taken: list[tuple[str, str]] = []
        for source_id, phone, email, member_no, code in _members_matching(
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
            _numbers_redraw(member_nos, codes, taken)

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
            result.bad_lines += 1
            result.errors.extend(
                MemberImportError(
                    member_import_id=self.member_import.pk,
                    line=row.line,
                    source_id=row.source_id[:100],
                    column=column,
                    code=code,
                    params=params,
                )
                for column, code, params in errors
            )

        numbers = list(zip(member_nos, codes, strict=True))[: len(good)]
        if good:
            if self.use_copy:
                self._insert_copy(good, numbers)
            else:
                self._insert_orm(good, numbers)
        MemberImportError.objects.bulk_create(result.errors, batch_size=1000)
        result.created = len(good)
        if self.parallel:
            # Check the batch's foreign keys now, not at commit: the update below locks the
            # import's row until the commit, and the other writer's update waits for it.
            # (Only in a transaction of our own: this holds until the transaction ends.)
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Increments, not totals: with two writers the batches commit in either order.
        MemberImport.objects.filter(pk=self.member_import.pk).update(
            processed_rows=F("processed_rows") + len(rows),
            created_count=F("created_count") + result.created,
            existing_count=F("existing_count") + result.existing,
            bad_count=F("bad_count") + result.bad_lines,
        )
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


# --- Services ---------------------------------------------------------------------------


def member_import_start(
    *,
    file_name: str,
    content: bytes,
    actor: User | None = None,
    actor_label: str = "",
    keep_content: bool = True,
) -> MemberImport:
    """Check the file as a whole and record it, ready to run; raises `ImportFileError`.

    Nothing is written for a file that is not UTF-8 CSV with the required header and at
    least one row. An upload keeps the file in the row, for the worker that runs it; the
    command line, which runs the file at once, keeps only its name and checksum.
    """
    text = _decode(content)
    header, records = _read_text(text)
    try:
        lines = _plain_lines(text)
        if lines is None:
            total = sum(1 for _record in records)
        else:  # the records that `_records` yields, less the header, counted not split
            total = sum(1 for line in lines if "," in line or line.strip()) - 1
    except csv.Error:
        raise ImportFileError(gettext("This is not a CSV file.")) from None
    if total == 0:
        raise ImportFileError(gettext("The file has a header but no members below it."))
    if actor is not None and actor.is_authenticated:
        actor_label = str(actor)
    else:
        actor = None
    return MemberImport.objects.create(
        file_name=text_without_nul(os.path.basename(file_name))[:255] or "members.csv",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        content=content if keep_content else b"",
        columns=header.columns,
        ignored_columns=header.ignored,
        total_rows=total,
        actor=actor,
        actor_label=actor_label,
    )


def member_import_run(
    *,
    member_import_id: int,
    content: bytes | None = None,
    progress: ProgressCallback | None = None,
) -> MemberImport:
    """Import the rows of a started import; safe to call twice (a finished run is kept).

    `content` is the file when the caller still holds it; otherwise the kept copy is read.
    A run interrupted part-way (a worker killed) starts again from the top: the batches it
    committed are found by source_id and counted as already imported.
    """
    with transaction.atomic():
        member_import = (
            MemberImport.objects.select_for_update().defer("content").get(pk=member_import_id)
        )
        if member_import.is_finished:
            return member_import
        member_import.status = MemberImport.Status.RUNNING
        member_import.started_at = timezone.now()
        member_import.processed_rows = member_import.created_count = 0
        member_import.existing_count = member_import.bad_count = 0
        member_import.save(
            update_fields=[
                "status",
                "started_at",
                "processed_rows",
                "created_count",
                "existing_count",
                "bad_count",
            ]
        )
        member_import.errors.all().delete()
    if content is None:
        content = bytes(
            MemberImport.objects.values_list("content", flat=True).get(pk=member_import_id)
        )

    importer = _Importer(member_import=member_import, progress=progress)
    try:
        importer.run(content)
    except Exception as exc:
        _member_import_finish(
            member_import=member_import, importer=importer, failure=f"{type(exc).__name__}: {exc}"
        )
        raise
    return _member_import_finish(member_import=member_import, importer=importer)


def _member_import_finish(
    *, member_import: MemberImport, importer: _Importer, failure: str = ""
) -> MemberImport:
    member_import.status = MemberImport.Status.FAILED if failure else MemberImport.Status.DONE
    member_import.failure = failure
    member_import.finished_at = timezone.now()
    member_import.processed_rows = importer.processed
    member_import.created_count = importer.created
    member_import.existing_count = importer.existing
    member_import.bad_count = importer.bad
    with transaction.atomic():
        MemberImport.objects.filter(pk=member_import.pk).update(
            status=member_import.status,
            failure=failure,
            finished_at=member_import.finished_at,
            processed_rows=importer.processed,
            created_count=importer.created,
            existing_count=importer.existing,
            bad_count=importer.bad,
        )
        # One entry for the whole run, not one per member: the counts say what it did.
        audit_log(
            actor=member_import.actor,
            actor_label=member_import.actor_label,
            action="member.import",
            target=member_import,
            details={
                "file_name": member_import.file_name,
                "sha256": member_import.sha256,
                "status": member_import.status,
                "rows": importer.processed,
                "created": importer.created,
                "already_imported": importer.existing,
                "bad_rows": importer.bad,
                "seconds": round(time.monotonic() - importer.started, 3),
                **({"failure": failure} if failure else {}),
            },
        )
    return member_import


def member_import_file(
    *,
    file_name: str,
    content: bytes,
    actor: User | None = None,
    actor_label: str = "",
    progress: ProgressCallback | None = None,
) -> MemberImport:
    """Start and run an import in one go (the command line and the benchmark)."""
    member_import = member_import_start(
        file_name=file_name,
        content=content,
        actor=actor,
        actor_label=actor_label,
        keep_content=False,
    )
    return member_import_run(member_import_id=member_import.pk, content=content, progress=progress)


# --- Reads ------------------------------------------------------------------------------


def member_import_get(*, import_id: int) -> MemberImport | None:
    # The file can be megabytes; the progress page polls every second and never needs it.
    return MemberImport.objects.defer("content").filter(pk=import_id).first()


def member_import_list(*, limit: int = 20) -> QuerySet[MemberImport]:
    return MemberImport.objects.defer("content").order_by("-created_at", "-id")[:limit]


def member_import_error_list(*, member_import: MemberImport) -> QuerySet[MemberImportError]:
    return member_import.errors.order_by("line", "id")


def import_error_message(error: MemberImportError) -> str:
    """The reason for one problem, in the current language."""
    template = MESSAGES.get(error.code)
    if template is None:
        return error.code
    try:
        return str(template) % error.params if error.params else str(template)
    except (KeyError, TypeError, ValueError):
        return str(template)
