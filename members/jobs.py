"""Nightly jobs: a registry the apps fill, and a runner that records each run as a JobRun.

Apps register their jobs in `AppConfig.ready()` (members cannot import the apps to its
right). `run_nightly` and the Celery beat tasks run them in `order`; every job function
takes the business date and returns (rows touched, details) and must be idempotent, so a
second run for the same date, or a run after a crash, ends in the same state.
"""

from __future__ import annotations

import datetime
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from .models import JobRun

logger = logging.getLogger(__name__)

JobResult = tuple[int, dict[str, Any]]
JobFunction = Callable[[datetime.date], JobResult]


@dataclass(frozen=True)
class NightlyJob:
    name: str
    order: int
    function: JobFunction


_jobs: dict[str, NightlyJob] = {}


def nightly_job_register(*, name: str, order: int, function: JobFunction) -> None:
    """Add a job to the chain; beat's times for it are in settings.CELERY_BEAT_SCHEDULE."""
    _jobs[name] = NightlyJob(name=name, order=order, function=function)


def nightly_jobs() -> list[NightlyJob]:
    return sorted(_jobs.values(), key=lambda job: (job.order, job.name))


def nightly_job_get(name: str) -> NightlyJob:
    return _jobs[name]


def job_run(*, name: str, business_date: datetime.date) -> JobRun:
    """Run one registered job for a date, recording start, end, rows and outcome."""
    job = nightly_job_get(name)
    run = JobRun.objects.create(job=name, business_date=business_date, status=JobRun.Status.RUNNING)
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
    run.refresh_from_db()
    return run


def nightly_run(*, business_date: datetime.date) -> list[JobRun]:
    """The whole chain for one date, in order; a failed job does not stop the ones after it."""
    return [job_run(name=job.name, business_date=business_date) for job in nightly_jobs()]
