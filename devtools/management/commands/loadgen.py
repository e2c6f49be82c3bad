"""`manage.py loadgen --members N --purchases M`: build a synthetic data set fast.

A progress bar goes to stderr; the summary (and the reconcile check) to stdout.
"""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from devtools.loadgen import LoadgenCheckFailed, LoadgenRefused, loadgen, progress_bar
from points.jobs import reconcile_job


class Command(BaseCommand):
    help = (
        "Build a realistic synthetic data set: stores, members with accounts, purchases over "
        "the last 14 months with their points in the ledger, tier activity and the tiers "
        "they qualify for. On PostgreSQL the database generates the rows itself. Refuses to "
        "run on a database that already has members unless --append is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=10_000, help="Members to create.")
        parser.add_argument("--purchases", type=int, default=0, help="Purchases to create.")
        parser.add_argument(
            "--append", action="store_true", help="Add to a database that already has data."
        )
        parser.add_argument("--seed", type=int, default=None, help="Random seed.")
        parser.add_argument(
            "--no-reconcile", action="store_true", help="Skip the reconcile check at the end."
        )
        parser.add_argument(
            "--quiet-progress", action="store_true", help="No progress bar on stderr."
        )

    def handle(self, *args, **options) -> None:
        if options["members"] < 0 or options["purchases"] < 0:
            raise CommandError("--members and --purchases cannot be negative")
        try:
            result = loadgen(
                members=options["members"],
                purchases=options["purchases"],
                append=options["append"],
                seed=options["seed"],
                progress=None if options["quiet_progress"] else progress_bar(self.stderr._out),
            )
        except (LoadgenRefused, LoadgenCheckFailed) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Created {result.members:,} members and {result.purchases:,} purchases "
            f"({result.points:,} points, {result.tiers:,} members Silver or above) "
            f"in {result.seconds:,.1f}s."
        )
        if result.timings:
            self.stdout.write(
                "Steps: " + ", ".join(f"{step} {sec:,.1f}s" for step, sec in result.timings.items())
            )
        if not options["no_reconcile"]:
            _checked, details = reconcile_job(timezone.localdate() or datetime.date.today())
            if "failed" in details:
                raise CommandError(f"reconcile failed: {details['failed']}")
            self.stdout.write(f"Reconcile: {details['accounts_checked']:,} accounts balance.")
