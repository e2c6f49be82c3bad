"""Celery tasks for points: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from .imports import points_import_run


@shared_task
def points_import_task(import_id: int) -> None:
    # Safe to run twice: a finished import is left as it is, and an interrupted one starts
    # again and finds what it already wrote by receipt number / source_id.
    points_import_run(points_import_id=import_id)
