"""Celery tasks of the platform: thin wrappers that take names, dates or ids, call a service."""

from __future__ import annotations

import datetime

from celery import Task, chain, shared_task
from celery.result import AsyncResult
from django.utils import timezone

from .imports import import_run
from .jobs import job_run, nightly_jobs


@shared_task
def nightly_job_task(name: str, business_date: str | None = None) -> int:
    """Run one registered nightly job (beat passes no date: today in Asia/Shanghai)."""
    # Safe to run twice, and after a worker was killed mid-run: the jobs are idempotent and
    # job_run marks the killed run interrupted (or skips if another run is still at work).
    day = datetime.date.fromisoformat(business_date) if business_date else timezone.localdate()
    return job_run(name=name, business_date=day).pk


@shared_task(bind=True)
def nightly_chain_task(self: Task, business_date: str | None = None) -> None:
    """Queue the whole nightly chain for a date (default today in Asia/Shanghai).

    The chain's tasks go to the queue this task came from, so a chain started on a
    dedicated queue stays there.
    """
    day = datetime.date.fromisoformat(business_date) if business_date else timezone.localdate()
    queue = (self.request.delivery_info or {}).get("routing_key") or None
    nightly_chain_enqueue(business_date=day, queue=queue)


def nightly_chain_enqueue(*, business_date: datetime.date, queue: str | None = None) -> AsyncResult:
    """Queue one nightly_job_task per registered job, in order, as a Celery chain.

    Each step is an immutable signature (it does not take the previous one's result) and
    job_run records a failure instead of raising, so a failed job does not stop the ones
    after it — as in `run_nightly`. A step starts only when the one before has finished.
    """
    options = {"queue": queue} if queue else {}
    steps = [
        nightly_job_task.si(job.name, business_date.isoformat()).set(**options)
        for job in nightly_jobs()
    ]
    return chain(*steps).apply_async()


@shared_task
def import_run_task(run_id: int) -> None:
    # Safe to run twice: a finished import is left as it is, and an interrupted one starts
    # again and finds the rows it already wrote by their keys (source_id, receipt).
    import_run(run_id=run_id)
