"""`{{ amount|money }}`: the one way a page shows an amount of money (see core/money.py)."""

from __future__ import annotations

from django import template

from core.money import money_format

register = template.Library()


@register.filter(name="money")
def money(value: object) -> str:
    return money_format(value)
