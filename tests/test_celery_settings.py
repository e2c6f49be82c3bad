"""Celery is configured so a crashed worker never loses or doubles a job."""

from __future__ import annotations

from django.conf import settings

import campaigns.tasks
import core.tasks
from loyalty_site.celery import app

# What the worker's autodiscovery imports: tasks register with the app as their module loads.
AUTODISCOVERED = (campaigns.tasks, core.tasks)


def nightly_entries() -> dict:
    return {
        name: entry
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] == "core.tasks.nightly_job_task"
    }


def test_tasks_are_acknowledged_late_and_requeued_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_the_broker_waits_longer_than_the_longest_task_before_redelivering():
    assert app.conf.broker_transport_options["visibility_timeout"] >= 3 * 3600


def test_beat_runs_the_nightly_jobs_at_the_product_times_in_shanghai():
    assert app.conf.timezone == "Asia/Shanghai"
    schedule = {
        name: (entry["schedule"].hour, entry["schedule"].minute, entry["args"])
        for name, entry in nightly_entries().items()
    }
    assert schedule == {
        "points_expiry": ({0}, {30}, ("points_expiry",)),
        "tier_evaluation": ({1}, {0}, ("tier_evaluation",)),
        "analytics": ({2}, {0}, ("analytics",)),
        "churn_scoring": ({3}, {0}, ("churn_scoring",)),
        "campaign_results": ({3}, {15}, ("campaign_results",)),
        "reconcile": ({3}, {30}, ("reconcile",)),
        "expiry_reminders": ({9}, {0}, ("expiry_reminders",)),
        "birthday_benefits": ({9}, {0}, ("birthday_benefits",)),
        "tier_notices": ({9}, {0}, ("tier_notices",)),
    }


def test_every_beat_entry_runs_a_registered_job_through_a_known_task():
    from core.jobs import nightly_jobs

    registered = {job.name for job in nightly_jobs()}
    scheduled = {entry["args"][0] for entry in nightly_entries().values()}
    assert sorted(scheduled - registered) == [], "scheduled but not registered"
    for entry in nightly_entries().values():
        assert entry["task"] in app.tasks


def test_the_beat_schedule_is_the_apps_schedule():
    assert app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE


def test_beat_starts_due_campaigns_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["campaigns_tick"]
    assert entry["task"] == "campaigns.tasks.campaigns_tick_task"
    assert entry["task"] in app.tasks
    schedule = entry["schedule"]
    assert schedule.minute == set(range(60))
    assert schedule.hour == set(range(24))
    # The only entries: the nightly jobs and this one.
    assert set(settings.CELERY_BEAT_SCHEDULE) - set(nightly_entries()) == {"campaigns_tick"}
