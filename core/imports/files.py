"""Reading an import file: the encoding, the records, the header.

One decoder for every kind: UTF-8, UTF-8 with a byte-order mark (Excel's "CSV UTF-8"), and
GBK (Excel's "CSV" on a Chinese Windows) refused with the way to save the file as UTF-8,
also when its bytes happen to be valid UTF-8 (`_reads_as_gbk`). Workbooks and UTF-16 text
are refused as a whole; a stray NUL is the error of its row (the kinds' checkers report it).
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import gc
import io
import itertools
import re
import sys
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.translation import gettext


class ImportFileError(Exception):
    """The file as a whole cannot be imported (not UTF-8 text, no header, no rows)."""


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


# --- Reading the file -------------------------------------------------------------------


# Zip (an .xlsx or .ods workbook), an old .xls workbook, a PDF.
_BINARY_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF")


def decode(content: bytes) -> str:
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


def records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number of the record's first line, fields), skipping blank lines."""
    lines = plain_lines(text)
    if lines is None:
        yield from csv_records(text)
        return
    for line, record in enumerate(lines, 1):
        if "," in record:
            yield line, record.split(",")
        elif record.strip():
            yield line, [record]


def plain_lines(text: str) -> list[str] | None:
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


def csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
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


# (column, required, what it holds) — the upload page and the command's help list these.
Column = tuple[str, bool, Any]


@dataclass(frozen=True)
class Header:
    positions: dict[str, int]  # known column → index
    width: int
    columns: list[str]
    ignored: list[str]


def header_read(
    fields: list[str], *, columns: Sequence[Column], one_of: Sequence[str] = ()
) -> Header:
    """The header line against a kind's columns: the required ones, and one of `one_of`."""
    names = [name for name, _required, _help in columns]
    found = [text_without_nul(name.strip().lower()) for name in fields]
    positions: dict[str, int] = {}
    for index, name in enumerate(found):
        if name in names and name not in positions:
            positions[name] = index
    required = [name for name, needed, _help in columns if needed]
    missing = [name for name in required if name not in positions]
    either = " / ".join(one_of)
    if one_of:
        required.append(either)
        if not any(name in positions for name in one_of):
            missing.append(either)
    if missing:
        raise ImportFileError(
            gettext(
                "The first line must be a header naming the columns; %(missing)s missing. "
                "Required columns: %(required)s."
            )
            % {"missing": ", ".join(missing), "required": ", ".join(required)}
        )
    ignored = [name for index, name in enumerate(found) if positions.get(name) != index]
    return Header(positions=positions, width=len(fields), columns=found, ignored=ignored)


def text_read(
    text: str, *, columns: Sequence[Column], one_of: Sequence[str] = ()
) -> tuple[Header, Iterator[tuple[int, list[str]]]]:
    """The header and the records after it."""
    found = records(text)
    try:
        first = next(found)
    except csv.Error:
        raise ImportFileError(gettext("This is not a CSV file.")) from None
    except StopIteration:
        raise ImportFileError(gettext("The file is empty.")) from None
    return header_read(first[1], columns=columns, one_of=one_of), found


def records_count(text: str, found: Iterator[tuple[int, list[str]]]) -> int:
    """How many records follow the header (`found`, from `text_read`)."""
    try:
        lines = plain_lines(text)
        if lines is None:
            return sum(1 for _record in found)
        # The records that `records` yields, less the header, counted not split.
        return sum(1 for line in lines if "," in line or line.strip()) - 1
    except csv.Error:
        raise ImportFileError(gettext("This is not a CSV file.")) from None


# --- Cells every kind reads the same way --------------------------------------------------

_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")


@lru_cache(maxsize=65536)
def cell_date(value: str) -> datetime.date | None:
    """YYYY-MM-DD (or Excel's YYYY/M/D); None when it is not a real date."""
    match = _DATE.fullmatch(value)
    if match is None:
        return None
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


_MIDNIGHT = datetime.time()


def cell_datetime(value: str, zone: ZoneInfo) -> datetime.datetime | None:
    """A date (midnight) or ISO date and time; in `zone` unless it gives an offset."""
    # A date alone is at most ten characters; a time with a date never a date alone.
    day = cell_date(value) if len(value) <= 10 else None
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
