"""Nightly jobs: a registry the apps fill, and a runner that records each run as a JobRun.

Apps register their jobs in `AppConfig.ready()` (core imports no app). `run_nightly` and
the Celery tasks run them in `order`; every job function takes the business date and
returns (rows touched, details) and must be idempotent, so a second run for the same date,
or a run after a crash, ends in the same state.

A job function may call `job_progress(done=, total=)` between its batches; the Jobs page
shows it. On PostgreSQL a run holds an advisory lock on its job's name for as long as it
runs, which tells a live run from one whose worker was killed (kill -9, OOM, lost machine):
- a new run that gets the lock marks every run of that job still `running` as failed with
  the error `interrupted` — nobody holds the lock, so none of them is still working;
- a new run that cannot get the lock within `LOCK_WAIT_SECONDS` is recorded as `skipped`
  with the error `already running` and does nothing: the run holding the lock does the work,
  and the jobs are idempotent, so nothing is lost. The short wait covers a task redelivered
  after its worker was killed, which can arrive before PostgreSQL has noticed the dead
  connection and let go of its lock.
On SQLite (the demo, one process) there are no advisory locks: a run always goes ahead.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import queue
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connection, connections
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import Promise

from .models import JobRun

logger = logging.getLogger(__name__)

JobResult = tuple[int, dict[str, Any]]
JobFunction = Callable[[datetime.date], JobResult]


@dataclass(frozen=True)
class NightlyJob:
    name: str
    order: int
    function: JobFunction
    # What the Jobs page calls it (translatable); the name when not given.
    label: str | Promise = ""
    # What the Jobs page calls each figure the job returns in its details.
    figures: Mapping[str, str | Promise] = field(default_factory=dict)

    @property
    def title(self) -> str | Promise:
        return self.label or self.name


_jobs: dict[str, NightlyJob] = {}


def nightly_job_register(
    *,
    name: str,
    order: int,
    function: JobFunction,
    label: str | Promise = "",
    figures: Mapping[str, str | Promise] | None = None,
) -> None:
    """Add a job to the chain; beat's times for it are in settings.CELERY_BEAT_SCHEDULE."""
    _jobs[name] = NightlyJob(
        name=name, order=order, function=function, label=label, figures=figures or {}
    )


def nightly_job_unregister(*, name: str) -> None:
    """Take a job out of the chain (tests that register one of their own)."""
    _jobs.pop(name, None)


def job_figure_label(job: str, key: str) -> str | Promise:
    """What the Jobs page calls a figure of `job`'s details; the key when nobody named it."""
    registered = _jobs.get(job)
    return registered.figures.get(key, key) if registered is not None else key


def nightly_jobs() -> list[NightlyJob]:
    return sorted(_jobs.values(), key=lambda job: (job.order, job.name))


def nightly_job_get(name: str) -> NightlyJob:
    return _jobs[name]


# The first key of the two-key advisory lock: "nightly jobs", apart from any other user.
LOCK_NAMESPACE = 0x4A4F42  # "JOB"
LOCK_WAIT_SECONDS = 15.0
LOCK_POLL_SECONDS = 0.25
INTERRUPTED = "interrupted"
ALREADY_RUNNING = "already running"

# The run the current job function belongs to, for job_progress (one per thread/task).
_current_run: ContextVar[int | None] = ContextVar("members_job_run", default=None)


def job_lock_key(name: str) -> int:
    """The second key of the job's advisory lock (the first is `LOCK_NAMESPACE`)."""
    # crc32 is stable across processes (hash() is salted); signed to fit PostgreSQL's int4.
    key = zlib.crc32(name.encode())
    return key - 2**32 if key >= 2**31 else key


@contextlib.contextmanager
def _job_lock(name: str, *, wait: float) -> Iterator[bool]:
    """Hold the job's session-level advisory lock; yields whether it was obtained.

    Session-level, not transaction-level: the job commits batch after batch, and the lock
    must last the whole run. It goes away with the connection, so a killed worker's lock is
    released by PostgreSQL as soon as it sees the connection closed.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = job_lock_key(name)
    deadline = time.monotonic() + wait
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, key])
            acquired = cursor.fetchone()[0]
            if acquired or time.monotonic() >= deadline:
                break
            time.sleep(LOCK_POLL_SECONDS)
    try:
        yield acquired
    finally:
        if acquired:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, key])
            except DatabaseError:
                # The connection is gone, and the lock with it.
                logger.warning("could not release the lock of job %s", name, exc_info=True)


def on_connections(
    *,
    items: Sequence[Any],
    work: Callable[[Any], Any],
    workers: int,
    done: Callable[[Any], None] | None = None,
) -> None:
    """`work(item)` for every item, in order of hand-out, on `workers` threads with a database
    connection each; `done(result)` runs in the calling thread as each item ends.

    The first error stops the handing out and is raised here once the threads have ended.
    Off PostgreSQL, inside a caller's transaction (another connection could not see what
    it holds) or with one worker, everything runs here on the caller's connection.
    """
    parallel = connection.vendor == "postgresql" and not connection.in_atomic_block
    if workers <= 1 or not parallel or len(items) < 2:
        for item in items:
            result = work(item)
            if done:
                done(result)
        return
    pending = list(reversed(items))
    results: queue.Queue[tuple[bool, Any]] = queue.Queue()
    lock = threading.Lock()

    def loop() -> None:
        try:
            while True:
                with lock:
                    if not pending:
                        return
                    item = pending.pop()
                results.put((True, work(item)))
        except BaseException as error:  # raised again by the calling thread
            with lock:
                pending.clear()
            results.put((False, error))
        finally:
            connections.close_all()  # this thread's connection only

    threads = [threading.Thread(target=loop) for _ in range(min(workers, len(items)))]
    for thread in threads:
        thread.start()
    error = None
    try:
        for _item in items:
            ok, value = results.get()
            if not ok:
                error = value
                break
            if done:
                done(value)
    finally:
        for thread in threads:
            thread.join()
    if error is not None:
        raise error


def job_progress(*, done: int, total: int | None = None) -> None:
    """Record how far the job running in this context is: `done` of `total` (if given).

    Does nothing outside a job run, so services can call it unconditionally. Called between
    batches (autocommit) it is visible at once; called inside a batch's transaction it
    commits with the batch, so the figure never runs ahead of what is written.
    """
    run_id = _current_run.get()
    if run_id is None:
        return
    fields: dict[str, int] = {"progress_done": done}
    if total is not None:
        fields["progress_total"] = total
    JobRun.objects.filter(pk=run_id).update(**fields)


def job_run(
    *, name: str, business_date: datetime.date, lock_wait: float = LOCK_WAIT_SECONDS
) -> JobRun:
    """Run one registered job for a date, recording start, end, rows and outcome.

    At most one run of a job at a time (PostgreSQL): see the module docstring for what
    happens to a run that finds another one holding the lock, and to runs left by a crash.
    """
    job = nightly_job_get(name)
    with _job_lock(name, wait=lock_wait) as acquired:
        if not acquired:
            logger.warning("job %s for %s skipped: already running", name, business_date)
            now = timezone.now()
            return JobRun.objects.create(
                job=name,
                business_date=business_date,
                status=JobRun.Status.SKIPPED,
                started_at=now,
                finished_at=now,
                seconds=0.0,
                error=ALREADY_RUNNING,
            )
        _interrupted_runs_close(name=name)
        run = JobRun.objects.create(
            job=name, business_date=business_date, status=JobRun.Status.RUNNING
        )
        token = _current_run.set(run.pk)
        try:
            _job_execute(job=job, run=run, business_date=business_date)
        finally:
            _current_run.reset(token)
    run.refresh_from_db()
    return run


def _interrupted_runs_close(*, name: str) -> int:
    """Mark the job's runs left `running` by a dead worker as failed.

    Only called while holding the job's lock (or on SQLite, one process), so none of them
    is still at work. Every date, not just this one: a run killed yesterday is as dead.
    """
    return JobRun.objects.filter(job=name, status=JobRun.Status.RUNNING).update(
        status=JobRun.Status.FAILED, finished_at=timezone.now(), error=INTERRUPTED
    )


def _job_execute(*, job: NightlyJob, run: JobRun, business_date: datetime.date) -> None:
    name = job.name
    started = time.monotonic()
    try:
        rows, details = job.function(business_date)
    except Exception as error:
        logger.exception("job %s for %s failed", name, business_date)
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRun.Status.FAILED,
            finished_at=timezone.now(),
            seconds=time.monotonic() - started,
            error=f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=5)}",
        )
    else:
        status = JobRun.Status.FAILED if details.get("failed") else JobRun.Status.SUCCEEDED
        JobRun.objects.filter(pk=run.pk).update(
            status=status,
            finished_at=timezone.now(),
            seconds=time.monotonic() - started,
            rows=rows,
            details=details,
            error=details.get("failed", ""),
        )


def nightly_run(*, business_date: datetime.date) -> list[JobRun]:
    """The whole chain for one date, in order; a failed job does not stop the ones after it."""
    return [job_run(name=job.name, business_date=business_date) for job in nightly_jobs()]


def job_run_list(*, job: str = "", status: str = "") -> QuerySet[JobRun]:
    """Runs, newest first, optionally of one job and/or in one status (the Jobs page)."""
    runs = JobRun.objects.order_by("-started_at", "-id")
    if job:
        runs = runs.filter(job=job)
    if status:
        runs = runs.filter(status=status)
    return runs


def job_run_get(*, run_id: int) -> JobRun | None:
    return JobRun.objects.filter(pk=run_id).first()


def job_choices() -> list[tuple[str, str | Promise]]:
    """(name, title) of the registered jobs in chain order, then of jobs only old runs name."""
    registered = [(job.name, job.title) for job in nightly_jobs()]
    known = {name for name, _title in registered}
    recorded = set(JobRun.objects.values_list("job", flat=True).distinct())
    return registered + [(name, name) for name in sorted(recorded - known)]
