"""The import's fast paths give exactly the answers of the slow, general code they stand for.

Phones and e-mails are checked with the libraries' own rules applied directly, a file
without quotes is split into lines and fields by hand, enrolment times are compared with
now in UTC, member numbers get their check digit from tables, the lookup's arrays are
spelled by hand: each is compared here with the library or code it stands for, on made-up
input of every shape.
"""

from __future__ import annotations

import csv
import datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from core.bulk import text_array
from core.imports.files import csv_records, header_read
from core.imports.files import records as read_records
from members.imports import (
    COLUMNS,
    MemberRowChecker,
    OverlongLine,
    import_email_is_valid,
    import_phone_normalize,
    numbers_draw,
)
from members.numbers import (
    InvalidPhone,
    damm_check_digit,
    member_no_from_digits,
    member_no_is_valid,
    member_nos_from_digits,
    phone_normalize,
)
from members.services import REFERRAL_ALPHABET


def library_phone(text: str) -> str | None:
    try:
        return phone_normalize(text)
    except InvalidPhone:
        return None


def import_phone(text: str) -> str | None:
    try:
        return import_phone_normalize(text)
    except InvalidPhone:
        return None


# The shapes people type a phone in: prefixes, separators, wrong lengths, other countries.
separator = st.sampled_from(["", "", "", " ", "-", ".", "(", ")", "  ", "\t"])
phone_digits = st.one_of(
    # Eleven digits starting with 1: mobiles, and numbers of ranges that are not mobiles.
    st.text("0123456789", min_size=10, max_size=10).map("1".__add__),
    st.text("0123456789", min_size=10, max_size=10).map("1".__add__),
    # Near misses: one digit short or over.
    st.text("0123456789", min_size=9, max_size=11).map("1".__add__),
    st.text("0123456789", max_size=16),
)
typed_phone = st.builds(
    lambda prefix, digits, cuts, seps: (
        prefix
        + "".join(
            digits[start:end] + sep
            for start, end, sep in zip(
                [0, *sorted(cuts)], [*sorted(cuts), len(digits)], seps, strict=False
            )
        )
    ),
    st.sampled_from(["", "", "", "+86", "+86 ", "0086", "0086 ", "86", "+", "00", "+1 ", "+852 "]),
    phone_digits,
    st.lists(st.integers(0, 11), max_size=3),
    st.lists(separator, min_size=4, max_size=4),
)


@settings(max_examples=600, deadline=None)
@given(typed_phone)
def test_the_fast_phone_check_gives_the_phone_librarys_answer(text):
    assert import_phone(text) == library_phone(text), text


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=24))
def test_the_fast_phone_check_gives_the_phone_librarys_answer_for_any_text(text):
    assert import_phone(text) == library_phone(text), text


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("13812345678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        ("+86 138 1234 5678", "+8613812345678"),
        ("008613812345678", "+8613812345678"),
        ("12345678901", None),  # 12x is no mobile range
        ("1381234567", None),  # ten digits
        ("+85291234567", "+85291234567"),  # Hong Kong: through the library
        # Full-width and Arabic-Indic digits pass str.isdigit: stored in ASCII all the same.
        ("13８１２３４５６７８", "+8613812345678"),
        ("١٣٨١٢٣٤٥٦٧٨", "+8613812345678"),
    ],
)
def test_typical_phones_come_out_as_the_library_says(typed, e164):
    assert import_phone(typed) == library_phone(typed) == e164


def validator_accepts(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


email_part = st.text(
    alphabet=st.sampled_from("abcxyz0189.-_+'\"@[]:!#%&*/=?^`{|}~ \\é中"), max_size=12
)


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        st.emails().map(str.lower),
        st.builds(lambda user, domain: f"{user}@{domain}", email_part, email_part),
        st.builds(lambda user: f"{user}@[127.0.0.1]", email_part),
        st.builds(lambda user: f"{user}@localhost", email_part),
        st.text(max_size=40),
    )
)
def test_the_fast_email_check_gives_the_validators_answer(value):
    assert import_email_is_valid(value) == validator_accepts(value), value


@pytest.mark.parametrize(
    "value",
    [
        "zw@example.com",
        "m12.ab@example.com.cn",
        "a@localhost",
        "a@[127.0.0.1]",
        "not-an-email",
        "a@b",
        "a@@example.com",
        '"quoted"@example.com',
        "x" * 300 + "@example.com",
    ],
)
def test_typical_emails_come_out_as_the_validator_says(value):
    assert import_email_is_valid(value) == validator_accepts(value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10**10 - 1), max_size=20))
def test_member_numbers_from_digits_carry_the_damm_check_digit(numbers):
    expected = [f"8{number:010d}" + damm_check_digit(f"8{number:010d}") for number in numbers]

    assert member_nos_from_digits(numbers) == expected
    assert [member_no_from_digits(number) for number in numbers] == expected


def test_drawn_numbers_and_codes_are_well_formed_and_distinct():
    member_nos, codes = numbers_draw(5000)

    assert len(member_nos) == len(codes) == 5000
    assert all(member_no_is_valid(number) for number in member_nos)
    assert all(len(code) == 8 and set(code) <= set(REFERRAL_ALPHABET) for code in codes)


@pytest.mark.postgres
@pytest.mark.django_db
@settings(max_examples=200, deadline=None)
@given(
    st.sets(
        st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
        min_size=1,
    )
)
def test_the_lookup_arrays_reach_postgresql_as_they_were(values):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [text_array(sorted(values))])
        (got,) = cursor.fetchone()

    assert sorted(got) == sorted(values)


def records_of(read, text: str) -> list[tuple[int, list[str]]] | str:
    """The records that `read` finds in the text, or the csv module's error."""
    try:
        return list(read(text))
    except csv.Error as exc:
        return str(exc)


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=st.sampled_from("ab中 ,\t\r\n\x0c\x00"), max_size=80),
        st.text(alphabet=st.sampled_from('ab中 ,\t\r\n\x0c\x00"'), max_size=80),
    )
)
def test_splitting_the_lines_ourselves_finds_the_records_the_csv_module_finds(text):
    assert records_of(read_records, text) == records_of(csv_records, text)


def test_a_line_longer_than_the_csv_modules_limit_is_one_overlong_record_either_way():
    long = "x" * (csv.field_size_limit() + 1)
    text = f"source_id,phone,name\nA1,13800000000,{long}\nA2,13800000001,乙\n"

    assert records_of(read_records, text) == records_of(csv_records, text)
    records = records_of(read_records, text)
    assert records == [
        (1, ["source_id", "phone", "name"]),
        (2, []),
        (3, ["A2", "13800000001", "乙"]),
    ]
    assert type(records[1][1]) is OverlongLine
    # A header that long is no header: the file is refused.
    assert records_of(read_records, f"source_id,{long}\nA1\n") == (
        "field larger than field limit (131072)"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2020-01-02T10:30:00", None),
        ("2020-01-02T10:30:00.250000+05:30", None),
        ("2019-03-08", None),
        ("2099-01-01", "enrolled_at_future"),
        # At the ends of the calendar the time in UTC is out of Python's range.
        ("0001-01-01", "enrolled_at_too_early"),
        ("1989-12-31T23:59:59", "enrolled_at_too_early"),
        ("1990-01-01", None),
        ("9999-12-31T23:00:00-05:00", "enrolled_at_future"),
    ],
)
def test_enrolment_times_are_checked_against_now_in_utc_as_python_compares_them(text, problem):
    now = timezone.now()
    checker = MemberRowChecker(
        header=header_read(["source_id", "phone", "name"], columns=COLUMNS), stores={}, now=now
    )

    moment, found, copy_text = checker._moment(text)

    assert found == problem
    if found != "enrolled_at_too_early":
        assert found == ("enrolled_at_future" if moment > now else None)
    if problem is None:
        # The COPY text names the same instant, whichever offset it is written with.
        assert datetime.datetime.fromisoformat(copy_text) == moment


def test_overlapping_imports_put_the_process_settings_back_when_the_last_one_ends():
    import gc
    import sys

    from core.imports import bulk_python

    switch = sys.getswitchinterval()
    assert gc.isenabled()
    first, second = bulk_python(), bulk_python()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first import ends while the second still runs
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
    assert sys.getswitchinterval() == switch
