"""manage.py run_nightly --date YYYY-MM-DD: run the whole nightly chain for one business date."""

from __future__ import annotations

import datetime
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.jobs import job_run, nightly_jobs
from core.models import JobRun


class Command(BaseCommand):
    help = (
        "Run the nightly jobs (tier evaluation, point expiry, reminders, birthday benefits, "
        "reconcile) for a business date in Asia/Shanghai, in order, and print what each did. "
        "Every job is idempotent: running a date twice changes nothing the second time."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--date",
            help="business date YYYY-MM-DD (default: today in Asia/Shanghai)",
        )
        parser.add_argument("--job", action="append", help="run only this job (repeatable)")

    def handle(self, *args, **options) -> None:
        if options["date"]:
            try:
                business_date = datetime.date.fromisoformat(options["date"])
            except ValueError as error:
                raise CommandError(f"--date must be YYYY-MM-DD, not {options['date']!r}") from error
        else:
            business_date = timezone.localdate()
        jobs = nightly_jobs()
        known = {job.name for job in jobs}
        wanted = options["job"] or [job.name for job in jobs]
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise CommandError(
                f"unknown job(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        failed = []
        for job in jobs:
            if job.name not in wanted:
                continue
            run = job_run(name=job.name, business_date=business_date)
            figures = {
                key: value for key, value in run.details.items() if not isinstance(value, list)
            }
            self.stdout.write(
                f"{job.name} {business_date}: {run.status}, {run.rows} rows in "
                f"{run.seconds:.2f} s {json.dumps(figures, ensure_ascii=False, default=str)}"
            )
            if run.status == JobRun.Status.SKIPPED:
                # Another run of the job holds its lock and does the work: not a failure.
                self.stderr.write(f"{job.name}: already running elsewhere, skipped")
            elif run.status != JobRun.Status.SUCCEEDED:
                failed.append(job.name)
                self.stderr.write(run.error.strip().splitlines()[0] if run.error else "failed")
        if failed:
            raise CommandError(f"failed: {', '.join(failed)}")
