"""Member numbers and phone numbers: generation, check digits, normalisation, masking.

A member number is 12 digits: the prefix 8, ten random digits and a Damm check digit. The Damm
algorithm catches every single-digit error and every swap of adjacent digits, so a number
mistyped at the till is rejected rather than matched to somebody else.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from functools import cache

import phonenumbers

MEMBER_NO_PREFIX = "8"
MEMBER_NO_LENGTH = 12
QR_PAYLOAD_PREFIX = "HYL:M:"

DAMM_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


class InvalidPhone(ValueError):
    """The text is not a valid mobile phone number."""


def damm_check_digit(digits: str) -> str:
    interim = 0
    for char in digits:
        interim = DAMM_TABLE[interim][int(char)]
    return str(interim)


@cache
def _damm_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Damm states: after the prefix and two digits (indexed by the digits), and after four
    more digits from any state (indexed by `state * 10_000 + digits`)."""
    two = [
        DAMM_TABLE[DAMM_TABLE[state][digits // 10]][digits % 10]
        for state in range(10)
        for digits in range(100)
    ]
    prefix = int(damm_check_digit(MEMBER_NO_PREFIX))
    four = tuple(
        two[two[state * 100 + digits // 100] * 100 + digits % 100]
        for state in range(10)
        for digits in range(10_000)
    )
    return tuple(two[prefix * 100 : prefix * 100 + 100]), four


def member_no_from_digits(number: int) -> str:
    """The member number whose ten digits after the prefix are `number` (0 ≤ number < 10¹⁰).

    Spelled as `member_no_generate` spells its numbers, with the check digit read from
    tables four digits at a time: the member import makes hundreds of thousands of them.
    """
    return member_nos_from_digits([number])[0]


def member_nos_from_digits(numbers: Sequence[int]) -> list[str]:
    """`member_no_from_digits` of each of the numbers, a batch at a time."""
    first, four = _damm_tables()
    states = [
        four[first[number // 10**8] * 10_000 + number // 10_000 % 10_000] for number in numbers
    ]
    return [
        f"{MEMBER_NO_PREFIX}{number:010d}{four[state * 10_000 + number % 10_000]}"
        for number, state in zip(numbers, states, strict=True)
    ]


def member_no_generate() -> str:
    body = MEMBER_NO_PREFIX + "".join(secrets.choice("0123456789") for _ in range(10))
    return body + damm_check_digit(body)


# ASCII digits only: `str.isdigit` also takes "²" (which `int` refuses) and "١" (which it reads).
_MEMBER_NO_SHAPE = re.compile(f"{MEMBER_NO_PREFIX}[0-9]{{{MEMBER_NO_LENGTH - 1}}}")


def member_no_is_valid(value: str) -> bool:
    return looks_like_member_no(value) and damm_check_digit(value) == "0"


def looks_like_member_no(value: str) -> bool:
    """Twelve digits starting with the prefix: meant as a member number, valid or not."""
    return _MEMBER_NO_SHAPE.fullmatch(value) is not None


def member_qr_payload(member_no: str) -> str:
    return f"{QR_PAYLOAD_PREFIX}{member_no}"


def member_no_from_qr_payload(value: str) -> str | None:
    value = value.strip()
    if value.upper().startswith(QR_PAYLOAD_PREFIX):
        return value[len(QR_PAYLOAD_PREFIX) :]
    return None


_PHONE_CHARS = re.compile(r"[\s\-().]")


def phone_normalize(value: str, *, region: str = "CN") -> str:
    """Return the phone in E.164 (+86 assumed when no country code is given)."""
    text = _PHONE_CHARS.sub("", value or "")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(value) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(value)
    if phonenumbers.number_type(parsed) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidPhone(value)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_national(e164: str) -> str:
    """+8613812341234 → 13812341234; other countries keep their + form."""
    if e164.startswith("+86"):
        return e164[3:]
    return e164


def phone_mask(e164: str) -> str:
    """138****1234: staff lists never show a whole phone without a logged reveal."""
    national = phone_national(e164)
    if len(national) <= 7:
        return "*" * len(national)
    return national[:3] + "****" + national[-4:]
