"""The one decoder every import kind reads its file with."""

from __future__ import annotations

import pytest
from django.utils import translation

from core.imports import ImportFileError, decode


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def test_utf8_and_utf8_with_a_byte_order_mark_read_the_same():
    text = "source_id,name\nA1,王芳\n"

    assert decode(text.encode()) == text
    assert decode(b"\xef\xbb\xbf" + text.encode()) == text  # Excel's "CSV UTF-8"


def test_gbk_is_refused_with_the_way_to_save_utf8():
    with pytest.raises(ImportFileError, match="CSV UTF-8"):
        decode("source_id,name\nA1,王芳\n".encode("gbk"))


def test_gbk_bytes_that_happen_to_be_valid_utf8_are_refused_too():
    # 卢梅 in GBK is C2 AC C3 B7, which UTF-8 reads as "¬÷".
    content = "source_id,name\n" + "".join(f"A{i},卢梅\n" for i in range(5))
    raw = content.encode("gbk")
    raw.decode("utf-8")  # valid UTF-8 indeed

    with pytest.raises(ImportFileError, match="not UTF-8"):
        decode(raw)


def test_names_in_other_alphabets_are_utf8():
    text = "source_id,name\nA1,Иван\nA2,Νίκος\nA3,Zoë\n"

    assert decode(text.encode()) == text


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04workbook", b"%PDF-1.7", "a,b\n1,2\n".encode("utf-16")],
    ids=["xlsx", "pdf", "utf-16"],
)
def test_workbooks_and_utf16_are_not_csv(content):
    with pytest.raises(ImportFileError, match="not a CSV file"):
        decode(content)


def test_an_empty_file_is_refused():
    with pytest.raises(ImportFileError, match="empty"):
        decode(b"  \n")
