"""Money as people read it: ¥2,098.30 in every language.

Two decimals, comma thousands, the sign before the ¥. Django's `floatformat` follows the
active locale (zh-hans groups nothing) and a bare `{{ amount }}` shows whatever the database
returned (SQLite sums give "1943.80000000000"), so pages use the `money` template filter
(core/templatetags/money.py) and texts written in Python use `money_format`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")


def money_format(value: object) -> str:
    """ "¥2,098.30" for 2098.3; "" for None or anything that is not a number."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError, TypeError):
        return ""
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"
