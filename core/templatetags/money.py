"""`{{ amount|money }}`: the one way a page shows an amount of money (see members/money.py)."""

from __future__ import annotations

from django import template

from members.money import money_format

register = template.Library()


@register.filter(name="money")
def money(value: object) -> str:
    return money_format(value)
