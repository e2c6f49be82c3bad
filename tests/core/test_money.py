"""The `money` filter: ¥2,098.30 in every language, whatever the database returned."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("2098.3"), "¥2,098.30"),
        (Decimal("1943.80000000000"), "¥1,943.80"),
        ("1234567.005", "¥1,234,567.01"),
        (0, "¥0.00"),
        (Decimal("-12.5"), "-¥12.50"),
        (None, ""),
        ("not a number", ""),
    ],
)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_money_reads_the_same_in_both_languages(value, shown, language):
    with translation.override(language):
        assert Template("{% load money %}{{ value|money }}").render(Context({"value": value})) == (
            shown
        )
