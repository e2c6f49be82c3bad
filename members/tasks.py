"""Celery tasks for members: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from .imports import member_import_run


@shared_task
def member_import_task(import_id: int) -> None:
    # Safe to run twice: a finished import is left as it is, and an interrupted one starts
    # again and finds the members it already wrote by their source_id.
    member_import_run(member_import_id=import_id)


@shared_task
def nightly_job_task(name: str, business_date: str | None = None) -> int:
    """Run one registered nightly job (beat passes no date: today in Asia/Shanghai)."""
    import datetime

    from django.utils import timezone

    from .jobs import job_run

    day = datetime.date.fromisoformat(business_date) if business_date else timezone.localdate()
    return job_run(name=name, business_date=day).pk
