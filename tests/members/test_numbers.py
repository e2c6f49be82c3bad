from __future__ import annotations

import pytest

from members.numbers import (
    InvalidPhone,
    damm_check_digit,
    member_no_from_qr_payload,
    member_no_generate,
    member_no_is_valid,
    member_qr_payload,
    phone_mask,
    phone_normalize,
)


def test_generated_member_numbers_are_valid_and_twelve_digits():
    for _ in range(200):
        number = member_no_generate()
        assert len(number) == 12
        assert number.startswith("8")
        assert member_no_is_valid(number)


def test_every_single_digit_typo_in_a_member_number_is_rejected():
    number = member_no_generate()
    for position in range(1, 12):
        for digit in "0123456789":
            if digit == number[position]:
                continue
            typo = number[:position] + digit + number[position + 1 :]
            assert not member_no_is_valid(typo), typo


def test_every_swap_of_adjacent_digits_is_rejected():
    number = "8" + "1234567890"
    number += damm_check_digit(number)
    for position in range(1, 11):
        swapped = (
            number[:position] + number[position + 1] + number[position] + number[position + 2 :]
        )
        if swapped != number:
            assert not member_no_is_valid(swapped), swapped


def test_qr_payload_round_trips_the_member_number():
    number = member_no_generate()
    assert member_no_from_qr_payload(member_qr_payload(number)) == number
    assert member_no_from_qr_payload(number) is None


@pytest.mark.parametrize(
    "typed",
    ["13800000001", "138 0000 0001", "138-0000-0001", "+86 138 0000 0001", "008613800000001"],
)
def test_chinese_mobiles_are_normalised_to_e164(typed):
    assert phone_normalize(typed) == "+8613800000001"


@pytest.mark.parametrize("typed", ["", "12345", "1380000000", "021-12345678", "abc"])
def test_landlines_and_garbage_are_not_mobile_phones(typed):
    with pytest.raises(InvalidPhone):
        phone_normalize(typed)


def test_masked_phone_shows_the_first_three_and_last_four_digits():
    assert phone_mask("+8613812341234") == "138****1234"
