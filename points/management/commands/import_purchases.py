"""`manage.py import_purchases FILE`: import purchases (and their points) from a CSV file."""

from __future__ import annotations

from points.models import PointsImport

from ._import_command import ImportCommand, columns_help


class Command(ImportCommand):
    kind = PointsImport.Kind.PURCHASES
    label = "manage.py import_purchases"
    help = (
        "Import purchases from a UTF-8 CSV file with a header row and post the points they "
        f"earn. Columns: {columns_help(PointsImport.Kind.PURCHASES)}. A store + receipt "
        "imported before is skipped, so re-running a file changes nothing. Bad rows are "
        "reported with their line number and not written."
    )
