"""The CSV writer every download uses: BOM, ISO dates, numbers bare, formulas defused."""

from __future__ import annotations

import datetime
from decimal import Decimal

from core.exports import csv_lines, csv_response


def _text(lines) -> str:
    return "".join(lines)


def test_a_file_starts_with_the_bom_and_the_header():
    text = _text(csv_lines(header=["会员号", "Name"], rows=[]))
    assert text == "\ufeff会员号,Name\r\n"


def test_text_that_a_spreadsheet_would_run_is_prefixed_and_numbers_stay_numbers():
    rows = [
        ["=SUM(A1)", "+1", "-2", "@x", "\tx", "\rx", "plain"],
        [-5, Decimal("-12.50"), 0.25, 3, None, True, "中文"],
    ]
    lines = list(csv_lines(header=["a"] * 7, rows=rows))
    assert lines[2] == "'=SUM(A1),'+1,'-2,'@x,'\tx,\"'\rx\",plain\r\n"
    # Negative numbers are numbers, not formulas: written bare so a spreadsheet sums them.
    assert lines[3] == "-5,-12.50,0.25,3,,True,中文\r\n"


def test_dates_are_iso():
    lines = list(csv_lines(header=["d"], rows=[[datetime.date(2026, 3, 1)]]))
    assert lines[2] == "2026-03-01\r\n"


def test_the_response_is_an_attachment_in_utf8():
    response = csv_response(filename="x.csv", header=["a"], rows=[[1]])
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body == "\ufeffa\r\n1\r\n"
