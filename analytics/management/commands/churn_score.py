"""manage.py churn_score --as-of YYYY-MM-DD --output FILE.csv: score every member."""

from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analytics.churn.services import ChurnError, churn_score

from .churn_train import as_of_parse


class Command(BaseCommand):
    help = (
        "Score every member enrolled and not closed on a business day with the newest churn "
        "model trained on or before it (training one first if there is none), write the "
        "scores to their member figures and to a CSV file: member_no,probability,band "
        "(UTF-8 with BOM). Running it again for the same day writes the same scores."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="business day YYYY-MM-DD")
        parser.add_argument("--output", help="the CSV file to write")

    def handle(self, *args, **options) -> None:
        as_of = as_of_parse(options["as_of"])
        if not options["output"]:
            raise CommandError("--output FILE.csv is required")
        output = Path(options["output"])
        if not output.parent.is_dir():
            raise CommandError(f"--output: no directory {str(output.parent)!r}")
        if output.is_dir():
            raise CommandError(f"--output: {str(output)!r} is a directory, not a file")
        try:
            result = churn_score(as_of=as_of)
        except ChurnError as error:
            raise CommandError(str(error)) from error
        # Member numbers are digits and bands are words: nothing a spreadsheet would run.
        with output.open("w", encoding="utf-8-sig", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["member_no", "probability", "band"])
            for member_no, probability, band in zip(
                result.scores["member_no"],
                result.scores["probability"],
                result.scores["band"],
                strict=True,
            ):
                writer.writerow([member_no, f"{probability:.4f}", band])
        model = result.model
        self.stdout.write(
            f"{len(result.scores)} members scored as of {as_of.isoformat()} by the "
            f"{model.kind} of {model.as_of.isoformat()}; {result.updated} member figures "
            f"updated; written to {output}"
        )
