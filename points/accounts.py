"""The ledger's system accounts, which both posting modules use.

`ledger` (one posting at a time) and `ledger_bulk` (batches) both post against them; here,
below both, so that `ledger_bulk` builds on this module and not on `ledger` — the two
posting modules import in one direction only (`ledger` → `ledger_bulk`).
"""

from __future__ import annotations

from .models import Account


def system_account(kind: str) -> Account:
    account, _ = Account.objects.get_or_create(kind=kind, member=None)
    return account
