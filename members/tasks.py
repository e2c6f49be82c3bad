"""Celery tasks for members: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from .messaging import member_welcome_send
from .models import Member


@shared_task
def member_welcome_send_task(member_id: int) -> None:
    # Not retried: a text that may have gone out is not sent twice. The service sends
    # nothing to a member who has a login by then, or no phone (closed meanwhile).
    member = Member.objects.filter(pk=member_id).first()
    if member is not None:
        member_welcome_send(member=member)
