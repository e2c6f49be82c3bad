"""`{{ txn|ledger_label }}`: a ledger transaction as a member reads it (points.selectors)."""

from __future__ import annotations

from django import template

from points.models import LedgerTransaction
from points.selectors import ledger_member_label

register = template.Library()


@register.filter(name="ledger_label")
def ledger_label(txn: LedgerTransaction) -> str:
    return ledger_member_label(txn=txn)
