"""`manage.py import_members FILE`: import members from a CSV file exported by an old system."""

from __future__ import annotations

from core.imports.command import ImportCommand


class Command(ImportCommand):
    kind = "members"
    label = "manage.py import_members"
    about = "Import members from a UTF-8 CSV file with a header row."
