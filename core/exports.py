"""CSV downloads: the writer of the analytics exports, and the cell rule the audit log uses.

UTF-8 with a byte-order mark, so Excel opens 中文 correctly; dates in ISO form; numbers
stay numbers (written bare, so a spreadsheet sums them); a text cell that a spreadsheet
would run as a formula (= + - @ tab CR first) gets a leading ' (CSV injection). Streamed,
so a long list never sits whole in memory.

The members export and the import error report still stream with their own writers: moving
them here is left for a later change.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

from django.http import StreamingHttpResponse
from django.utils import timezone, translation

CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """One cell as the writer should see it: numbers as they are, dates ISO, text guarded."""
    if value is None:
        return ""
    # bool is an int to Python, but a spreadsheet reader wants a word, not 1/0.
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text[:1] in CSV_FORMULA_STARTS else text


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def csv_lines(*, header: Sequence[object], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The lines of the file: the BOM, the header, then every row."""
    writer = csv.writer(_Echo())
    yield "\ufeff"
    yield writer.writerow([csv_cell(value) for value in header])
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def csv_response(
    *, filename: str, header: Sequence[object], rows: Iterable[Sequence[object]]
) -> StreamingHttpResponse:
    """A streamed CSV download named `filename` (ASCII: it goes in a header)."""
    language = translation.get_language()

    def lines() -> Iterator[str]:
        # The rows may be produced while the response streams, after the view has returned
        # and its language is gone; lazy texts in them still speak the reader's language.
        with translation.override(language):
            yield from csv_lines(header=header, rows=rows)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
