"""`manage.py bench nightly`: one JSON line per nightly job, then the lookups, at a small size."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from core.jobs import nightly_jobs
from core.models import JobRun
from devtools.loadgen import loadgen
from members.models import Member, User

pytestmark = pytest.mark.django_db


def test_bench_nightly_prints_each_job_then_the_lookups():
    loadgen(members=40, purchases=300, seed=4)
    out, err = StringIO(), StringIO()
    today = timezone.localdate().isoformat()
    call_command("bench", "nightly", "--date", today, "--samples", "6", stdout=out, stderr=err)

    lines = [json.loads(line) for line in out.getvalue().strip().splitlines()]
    if connection.vendor == "postgresql":
        # What earlier commands left in memory is written out first, and timed apart.
        checkpoint = lines.pop(0)
        assert checkpoint["job"] == "checkpoint" and checkpoint["seconds"] >= 0
    *job_lines, lookups = lines
    assert [line["job"] for line in job_lines] == [job.name for job in nightly_jobs()]
    for line in job_lines:
        assert set(line) == {"job", "seconds", "rows"}
        assert line["seconds"] >= 0
    assert set(lookups) == {"job", "member_search_ms", "portal_home_ms"}
    assert lookups["job"] == "lookups"
    assert lookups["member_search_ms"] > 0 and lookups["portal_home_ms"] > 0
    assert "found nobody" not in err.getvalue()
    assert "answered" not in err.getvalue()
    # Every job ran as on a real night, and the logins made for the portal are gone again.
    runs = JobRun.objects.filter(business_date=today)
    assert runs.count() == len(job_lines)
    assert not runs.exclude(status=JobRun.Status.SUCCEEDED).exists()
    assert not User.objects.exists()
    assert not Member.objects.exclude(user=None).exists()


def test_bench_nightly_can_run_one_job_without_lookups():
    loadgen(members=10, purchases=40, seed=1)
    out = StringIO()
    call_command(
        "bench",
        "nightly",
        "--job",
        "reconcile",
        "--no-lookups",
        "--no-checkpoint",
        stdout=out,
        stderr=StringIO(),
    )
    reconcile, lookups = (json.loads(line) for line in out.getvalue().strip().splitlines())
    assert reconcile["job"] == "reconcile" and reconcile["rows"] == 15
    assert lookups == {"job": "lookups"}
