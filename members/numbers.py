"""Member numbers and phone numbers: generation, check digits, normalisation, masking.

A member number is 12 digits: the prefix 8, ten random digits and a Damm check digit. The Damm
algorithm catches every single-digit error and every swap of adjacent digits, so a number
mistyped at the till is rejected rather than matched to somebody else.
"""

from __future__ import annotations

import re
import secrets

import phonenumbers

MEMBER_NO_PREFIX = "8"
MEMBER_NO_LENGTH = 12
QR_PAYLOAD_PREFIX = "HYL:M:"

_DAMM_TABLE = (
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
        interim = _DAMM_TABLE[interim][int(char)]
    return str(interim)


def member_no_generate() -> str:
    body = MEMBER_NO_PREFIX + "".join(secrets.choice("0123456789") for _ in range(10))
    return body + damm_check_digit(body)


def member_no_is_valid(value: str) -> bool:
    return (
        len(value) == MEMBER_NO_LENGTH
        and value.isdigit()
        and value.startswith(MEMBER_NO_PREFIX)
        and damm_check_digit(value) == "0"
    )


def looks_like_member_no(value: str) -> bool:
    """Twelve digits starting with the prefix: meant as a member number, valid or not."""
    return len(value) == MEMBER_NO_LENGTH and value.isdigit() and value.startswith(MEMBER_NO_PREFIX)


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
