"""Celery tasks for the platform: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from .imports import import_run


@shared_task
def import_run_task(run_id: int) -> None:
    # Safe to run twice: a finished import is left as it is, and an interrupted one starts
    # again and finds the rows it already wrote by their keys (source_id, receipt).
    import_run(run_id=run_id)
