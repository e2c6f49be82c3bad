"""`manage.py bench nightly --date YYYY-MM-DD` (registry: core/benchmarks.py).

Runs every registered nightly job for the date, in order, through `core.jobs.job_run`
(so each run is recorded as a JobRun like a real night), and prints one JSON line per job,
`{"job", "seconds", "rows"}`. On PostgreSQL a first line `{"job": "checkpoint", "seconds"}`
times the CHECKPOINT that writes out what earlier commands left in memory (it needs a
superuser or pg_checkpoint; `--no-checkpoint` skips it). Then it times the two lookups staff
and members wait for, on the server side, and prints
`{"job": "lookups", "member_search_ms", "portal_home_ms"}`:

- member search: the median of `members.selectors.member_search` for random existing
  members, by phone (as typed at the till, without +86) and by member number, half each;
- portal home: the median time of GET / through django.test.Client for random members,
  logged in with `force_login`. Members loaded without a login get one for the bench,
  inside a transaction that is rolled back at the end, so the data stays as it was.

Both are measured after a warm-up, so they show a server that has been up for a while.
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import time
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.benchmarks import Benchmark, benchmark_register


class _Rollback(Exception):
    """Leaves the bench's logins out of the database."""


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2) if samples else 0.0


@benchmark_register
class NightlyBenchmark(Benchmark):
    name = "nightly"
    help = (
        "Run the nightly chain for a date on the loaded data, one JSON line per job, then the "
        "median server time of member search and of the member portal home."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--date", help="business date YYYY-MM-DD (default: today)")
        parser.add_argument(
            "--job", action="append", help="run only this job (repeatable); default: all"
        )
        parser.add_argument(
            "--samples", type=int, default=200, help="lookups to time for each median"
        )
        parser.add_argument("--no-lookups", action="store_true", help="skip the lookups")
        parser.add_argument(
            "--no-checkpoint",
            action="store_true",
            help="do not write out earlier changes (CHECKPOINT) before the first job",
        )

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
        from core.jobs import job_run, nightly_jobs

        business_date = (
            datetime.date.fromisoformat(options["date"])
            if options.get("date")
            else timezone.localdate()
        )
        # The job lines go to the command's stdout; its last line is the returned result.
        out = options.get("stdout") or sys.stdout
        wanted = options.get("job")
        if connection.vendor == "postgresql" and not options.get("no_checkpoint"):
            # Whatever ran before (a loadgen leaves gigabytes of dirty pages) is written out
            # first, so its writes are not timed as the night's; the line says how long.
            began = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("CHECKPOINT")
            out.write(
                json.dumps({"job": "checkpoint", "seconds": round(time.perf_counter() - began, 3)})
                + "\n"
            )
        for job in nightly_jobs():
            if wanted and job.name not in wanted:
                continue
            log(f"{job.name} {business_date} …")
            run = job_run(name=job.name, business_date=business_date)
            if run.status != "succeeded":
                log(f"{job.name}: {run.status} {run.error.strip()[:300]}")
            out.write(
                json.dumps(
                    {"job": job.name, "seconds": round(run.seconds or 0, 3), "rows": run.rows}
                )
                + "\n"
            )
            out.flush()
        result: dict[str, Any] = {"job": "lookups"}
        if options.get("no_lookups"):
            return result
        samples = max(options.get("samples") or 0, 2)
        result["member_search_ms"] = _median_ms(_time_member_search(samples=samples, log=log))
        result["portal_home_ms"] = _median_ms(_time_portal_home(samples=samples, log=log))
        return result


def _random_members(count: int) -> list[Any]:
    from members.models import Member

    return list(
        Member.objects.filter(status=Member.Status.ACTIVE, phone__isnull=False).order_by("?")[
            :count
        ]
    )


def _time_member_search(*, samples: int, log: Callable[[str], None]) -> list[float]:
    from members.numbers import phone_national
    from members.selectors import member_search

    members = _random_members(samples)
    if not members:
        return []
    queries = [
        phone_national(member.phone) if index % 2 else member.member_no
        for index, member in enumerate(members)
    ]
    for query in queries[:10]:  # warm-up
        member_search(query=query)
    timings = []
    for query in queries:
        began = time.perf_counter()
        found = member_search(query=query)
        timings.append(time.perf_counter() - began)
        if not found.members:
            log(f"member search found nobody for {query!r}")
    log(f"member search: {len(timings)} lookups, median {_median_ms(timings)} ms")
    return timings


def _time_portal_home(*, samples: int, log: Callable[[str], None]) -> list[float]:
    from django.test import Client

    from members.models import Member, User

    timings: list[float] = []
    try:
        with transaction.atomic():
            members = _random_members(samples)
            client = Client(HTTP_HOST="localhost")
            users = []
            for member in members:
                user = member.user
                if user is None:
                    # Bench scaffolding, rolled back below: a login for a member loaded
                    # without one (the service for that is the phone-verified sign-up).
                    user = User.objects.create(phone=member.phone, phone_verified=True)
                    Member.objects.filter(pk=member.pk).update(user=user)
                users.append(user)
            for user in users[:5]:  # warm-up: templates, translations, connections
                client.force_login(user)
                client.get("/", secure=True)
            for user in users:
                client.force_login(user)
                began = time.perf_counter()
                response = client.get("/", secure=True)
                timings.append(time.perf_counter() - began)
                if response.status_code != 200:
                    log(f"portal home answered {response.status_code}")
            raise _Rollback
    except _Rollback:
        pass
    log(f"portal home: {len(timings)} pages, median {_median_ms(timings)} ms")
    return timings
