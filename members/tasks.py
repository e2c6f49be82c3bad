"""Celery tasks for members: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from .imports import member_import_run
from .messaging import member_welcome_send
from .models import Member


@shared_task
def member_import_task(import_id: int) -> None:
    # Safe to run twice: a finished import is left as it is, and an interrupted one starts
    # again and finds the members it already wrote by their source_id.
    member_import_run(member_import_id=import_id)


@shared_task
def member_welcome_send_task(member_id: int) -> None:
    # Not retried: a text that may have gone out is not sent twice. The service sends
    # nothing to a member who has a login by then, or no phone (closed meanwhile).
    member = Member.objects.filter(pk=member_id).first()
    if member is not None:
        member_welcome_send(member=member)
