"""`manage.py import_purchases FILE [--history]`: import purchases from a CSV file.

Without --history each purchase earns its points; with it, the purchases count for tiers
and analytics and earn none (the points come over with `import_balances`).
"""

from __future__ import annotations

from core.imports.command import ImportCommand


class Command(ImportCommand):
    kind = "purchases"
    label = "manage.py import_purchases"
    about = (
        "Import purchases from a UTF-8 CSV file with a header row and post the points they "
        "earn (with --history: record them for tiers and analytics, post no points)."
    )
