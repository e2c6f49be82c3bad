"""`manage.py import_balances FILE`: import opening point balances from a CSV file."""

from __future__ import annotations

from core.imports.command import ImportCommand


class Command(ImportCommand):
    kind = "balances"
    label = "manage.py import_balances"
    about = "Import opening point balances from a UTF-8 CSV file with a header row."
