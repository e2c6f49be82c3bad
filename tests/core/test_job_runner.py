"""The nightly job runner: progress, runs left behind by a killed worker, one run at a time."""

from __future__ import annotations

import datetime

import psycopg
import pytest
from django.db import connection

from core.jobs import (
    ALREADY_RUNNING,
    INTERRUPTED,
    LOCK_NAMESPACE,
    job_lock_key,
    job_progress,
    job_run,
    nightly_job_register,
    nightly_job_unregister,
    nightly_jobs,
    nightly_run,
)
from core.models import JobRun
from core.tasks import nightly_chain_task

DAY = datetime.date(2027, 4, 1)


@pytest.fixture
def register():
    """Register a job for one test only."""
    added = []

    def add(name: str, function, order: int = 50) -> None:
        nightly_job_register(name=name, order=order, function=function)
        added.append(name)

    yield add
    for name in added:
        nightly_job_unregister(name=name)


@pytest.mark.django_db
def test_a_job_reports_its_progress_on_its_own_run(register):
    seen = []

    def batches(day):
        for done in (0, 2, 4):
            job_progress(done=done, total=4)
            seen.append(JobRun.objects.values_list("progress_done", "progress_total").get())
        return 4, {"batches": 2}

    register("test_batches", batches)

    run = job_run(name="test_batches", business_date=DAY)

    assert seen == [(0, 4), (2, 4), (4, 4)]
    assert (run.status, run.rows, run.percent) == ("succeeded", 4, 100)


@pytest.mark.django_db
def test_progress_outside_a_job_run_changes_nothing():
    JobRun.objects.create(job="test", business_date=DAY, status="running")
    job_progress(done=1, total=2)
    assert JobRun.objects.get().progress_done is None


@pytest.mark.django_db
def test_a_run_left_running_by_a_killed_worker_is_marked_interrupted_by_the_next(register):
    register("test_job", lambda day: (0, {}))
    dead = JobRun.objects.create(job="test_job", business_date=DAY, status="running")
    yesterday = JobRun.objects.create(
        job="test_job", business_date=DAY - datetime.timedelta(days=1), status="running"
    )
    other_job = JobRun.objects.create(job="test_other", business_date=DAY, status="running")

    run = job_run(name="test_job", business_date=DAY)

    assert run.status == "succeeded"
    for left in (dead, yesterday):
        left.refresh_from_db()
        assert (left.status, left.error) == ("failed", INTERRUPTED)
        assert left.finished_at is not None
    other_job.refresh_from_db()
    assert other_job.status == "running"


@pytest.mark.django_db
def test_a_job_that_raises_is_recorded_as_failed_and_the_chain_goes_on(register):
    def broken(day):
        raise RuntimeError("disk full")

    register("test_broken", broken, order=1)
    register("test_after", lambda day: (1, {}), order=2)

    runs = nightly_run(business_date=DAY)

    by_job = {run.job: run for run in runs}
    assert by_job["test_broken"].status == "failed"
    assert "RuntimeError: disk full" in by_job["test_broken"].error
    assert by_job["test_after"].status == "succeeded"


@pytest.mark.django_db
def test_the_chain_queues_every_registered_job_in_order(register):
    # Tests run tasks eagerly: the chain runs here, one job after the other.
    order = []
    register("test_first", lambda day: (order.append(("first", day)) or 0, {}), order=-2)
    register("test_second", lambda day: (order.append(("second", day)) or 0, {}), order=-1)

    nightly_chain_task.delay(DAY.isoformat())

    assert order == [("first", DAY), ("second", DAY)]
    ran = set(JobRun.objects.filter(business_date=DAY).values_list("job", flat=True))
    assert ran == {job.name for job in nightly_jobs()}


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_second_run_while_one_holds_the_lock_is_skipped_and_touches_nothing(register):
    calls = []
    register("test_locked", lambda day: (calls.append(day) or 0, {}))
    left = JobRun.objects.create(job="test_locked", business_date=DAY, status="running")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as other:
        # Another worker is running the job: it holds the job's lock.
        other.execute(
            "SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, job_lock_key("test_locked")]
        )

        run = job_run(name="test_locked", business_date=DAY, lock_wait=0)

    assert (run.status, run.error) == ("skipped", ALREADY_RUNNING)
    assert calls == []
    left.refresh_from_db()
    assert left.status == "running"  # it may really be running: left alone
    # The lock went with the other connection; the next run goes ahead.
    assert job_run(name="test_locked", business_date=DAY).status == "succeeded"
    left.refresh_from_db()
    assert left.error == INTERRUPTED
