"""The nightly chain on a real Celery worker: it runs every job, and survives a kill -9.

These need PostgreSQL (the worker reads the committed test database; advisory locks) and
Redis (the broker); they are skipped on SQLite.
"""

from __future__ import annotations

import datetime
import os
import signal
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from core.jobs import INTERRUPTED, nightly_jobs
from core.models import JobRun
from core.tasks import nightly_chain_enqueue, nightly_chain_task
from devtools.loadgen import loadgen
from points.jobs import start_of
from points.ledger import expiry_for
from points.models import ExpiryReminder, LedgerTransaction, Lot, LotMovement
from points.services import purchase_record
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory

from .conftest import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

CHAIN_TIMEOUT = 60.0


def chain_finished(business_date: datetime.date) -> bool:
    """Every registered job has a finished run for the date (the chain's last step is done)."""
    finished = set(
        JobRun.objects.filter(business_date=business_date)
        .exclude(status=JobRun.Status.RUNNING)
        .values_list("job", flat=True)
    )
    return finished >= {job.name for job in nightly_jobs()}


def latest_runs(business_date: datetime.date) -> dict[str, JobRun]:
    runs: dict[str, JobRun] = {}
    for run in JobRun.objects.filter(business_date=business_date).order_by("started_at", "id"):
        runs[run.job] = run
    return runs


def due_lots(business_date: datetime.date) -> dict[int, tuple[int, datetime.datetime, int]]:
    """Lot id → (account, expires_at, remaining) of the lots the date's expiry must expire."""
    return {
        pk: (account_id, expires_at, remaining)
        for pk, account_id, expires_at, remaining in Lot.objects.filter(
            remaining__gt=0, expires_at__lte=start_of(business_date)
        ).values_list("pk", "account_id", "expires_at", "remaining")
    }


def assert_expired_exactly_once(due: dict[int, tuple[int, datetime.datetime, int]]) -> None:
    """Every due lot is empty, taken by exactly one expiry, one transaction per account and
    expiry date — what an uninterrupted run leaves."""
    assert not Lot.objects.filter(pk__in=due, remaining__gt=0).exists()
    moves = (
        LotMovement.objects.filter(lot__in=due, transaction__kind=LedgerTransaction.Kind.EXPIRE)
        .values("lot")
        .annotate(times=Count("id"), amount=Sum("amount"))
    )
    assert {row["lot"]: (row["times"], -row["amount"]) for row in moves} == {
        pk: (1, remaining) for pk, (_account, _expires, remaining) in due.items()
    }
    expiries = LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.EXPIRE)
    assert expiries.count() == len({(account, expires) for account, expires, _ in due.values()})
    assert -expiries.aggregate(total=Sum("member_amount"))["total"] == sum(
        remaining for *_rest, remaining in due.values()
    )


def test_the_nightly_chain_runs_every_job_on_the_worker(celery_worker):
    worker = celery_worker()
    today = timezone.localdate()
    now = timezone.now()
    store = StoreFactory(code="SH001")
    for n in range(4):
        member = MemberFactory(consent_sms=True)
        # Bought 13 months ago: these points are past their last day.
        purchase_record(
            member=member,
            store=store,
            receipt_no=f"OLD{n}",
            occurred_at=now - datetime.timedelta(days=400),
            now=now - datetime.timedelta(days=400),
            amount=Decimal(100 + n),
        )
    soon = MemberFactory(consent_sms=True)
    # Bought in this month last year: the points lapse at the end of this month.
    a_year_ago = timezone.localtime(now).replace(year=today.year - 1, day=1, hour=12)
    purchase_record(
        member=soon,
        store=store,
        receipt_no="SOON",
        occurred_at=a_year_ago,
        now=a_year_ago,
        amount=Decimal(80),
    )
    assert expiry_for(a_year_ago) > start_of(today)
    due = due_lots(today)
    assert len(due) == 4

    nightly_chain_task.apply_async(args=[today.isoformat()], queue=worker.queue)
    wait_for(
        lambda: chain_finished(today),
        timeout=CHAIN_TIMEOUT,
        what="the nightly chain",
        worker=worker,
    )

    runs = latest_runs(today)
    assert {name: run.status for name, run in runs.items()} == {
        job.name: JobRun.Status.SUCCEEDED for job in nightly_jobs()
    }, {name: run.error for name, run in runs.items()}
    assert runs["points_expiry"].rows == 4
    assert runs["points_expiry"].progress_done == runs["points_expiry"].progress_total == 4
    assert_expired_exactly_once(due)
    reminder = ExpiryReminder.objects.get()
    assert (reminder.member, reminder.points, reminder.channels) == (soon, 80, ["sms"])
    assert worker.log().count("[SMS to ") == 1
    # The chain went through the broker, one job after the other, on this test's queue.
    started = [run.started_at for run in JobRun.objects.order_by("started_at")]
    finished = [run.finished_at for run in JobRun.objects.order_by("started_at")]
    assert all(end <= start for end, start in zip(finished, started[1:], strict=False))


def test_a_worker_killed_during_expiry_ends_as_if_it_had_not_been(celery_worker, client, settings):
    # One account per batch: the expiry takes long enough to be caught half-way.
    worker = celery_worker(POINTS_EXPIRY_BATCH="1")
    today = timezone.localdate()
    soon = MemberFactory(consent_sms=True)
    purchase_record(
        member=soon,
        store=StoreFactory(code="SH001"),
        receipt_no="SOON",
        occurred_at=timezone.localtime().replace(year=today.year - 1, day=1, hour=12),
        now=timezone.localtime().replace(year=today.year - 1, day=1, hour=12),
        amount=Decimal(80),
    )
    loadgen(members=600, purchases=2400, seed=11, append=True)
    due = due_lots(today)
    assert len(due) > 100
    assert not ExpiryReminder.objects.exists()

    worker.wait_ready()
    nightly_chain_enqueue(business_date=today, queue=worker.queue)

    def expiry_half_way() -> JobRun | None:
        return JobRun.objects.filter(
            job="points_expiry",
            business_date=today,
            status=JobRun.Status.RUNNING,
            progress_done__gt=0,
            progress_total__gt=0,
        ).first()

    running = wait_for(
        expiry_half_way, timeout=CHAIN_TIMEOUT, what="expiry to start", worker=worker
    )
    (child,) = worker.pool_children()
    os.kill(child, signal.SIGKILL)
    killed_at = JobRun.objects.get(pk=running.pk).progress_done
    assert 0 < killed_at < len(due), "killed too late to test anything"

    # acks_late + reject_on_worker_lost: the broker hands the task to the new pool process,
    # which finds the dead run, marks it interrupted and finishes the work; the chain goes on.
    wait_for(
        lambda: chain_finished(today),
        timeout=CHAIN_TIMEOUT,
        what="the nightly chain after the kill",
        worker=worker,
    )

    expiry_runs = list(
        JobRun.objects.filter(job="points_expiry", business_date=today).order_by("started_at")
    )
    assert [(run.status, run.error) for run in expiry_runs] == [
        (JobRun.Status.FAILED, INTERRUPTED),
        (JobRun.Status.SUCCEEDED, ""),
    ]
    assert expiry_runs[0].pk == running.pk
    assert 0 < expiry_runs[0].progress_done < expiry_runs[0].progress_total
    # What the killed run committed stayed done: the second run expired only the rest (the
    # batch in flight at the kill may have committed before its progress was written).
    assert expiry_runs[0].progress_done + expiry_runs[1].rows <= len(due)
    assert_expired_exactly_once(due)
    assert not Lot.objects.filter(remaining__lt=0).exists()
    runs = latest_runs(today)
    assert runs["reconcile"].status == JobRun.Status.SUCCEEDED, runs["reconcile"].details
    assert runs["expiry_reminders"].status == JobRun.Status.SUCCEEDED
    # Every reminder went out once: one row per member and date, one message per row.
    reminders = ExpiryReminder.objects.all()
    assert reminders.filter(member=soon).count() == 1
    assert not reminders.filter(sent_at__isnull=True).exists()
    by_sms = reminders.filter(channels__contains=["sms"]).count()
    assert by_sms >= 1
    # loadgen's members consent to texts, so the chain's tier and birthday notices text
    # some of them too: the expiry reminders are the texts that say so.
    texts = [line for line in worker.log().splitlines() if "[SMS to " in line]
    assert sum("积分将于" in line for line in texts) == by_sms
    # Staff see what happened on the Jobs page.
    settings.LANGUAGE_CODE = "en"
    client.force_login(make_role_user("auditor"))
    html = client.get("/staff/jobs/", {"job": "points_expiry"}).content.decode()
    assert "Interrupted: the worker stopped during this run." in html
    assert "Succeeded" in html
