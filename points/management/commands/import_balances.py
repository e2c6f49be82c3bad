"""`manage.py import_balances FILE`: import opening point balances from a previous system."""

from __future__ import annotations

from points.models import PointsImport

from ._import_command import ImportCommand, columns_help


class Command(ImportCommand):
    kind = PointsImport.Kind.BALANCES
    label = "manage.py import_balances"
    help = (
        "Import opening point balances from a UTF-8 CSV file with a header row: one lot each, "
        f"with the given expiry. Columns: {columns_help(PointsImport.Kind.BALANCES)}. A "
        "source_id imported before is skipped, so re-running a file changes nothing. Bad "
        "rows are reported with their line number and not written."
    )
