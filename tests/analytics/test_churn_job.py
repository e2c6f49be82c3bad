"""The nightly churn scoring job through `run_nightly --date`: retrain weekly, score, roll up."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command

from analytics import metrics
from analytics.models import ChurnModel, MemberFigures, Rollup
from core.jobs import nightly_jobs
from core.models import JobRun

from .churn_history import history_build

pytestmark = pytest.mark.django_db


def _night(day: str) -> JobRun:
    call_command(
        "run_nightly",
        "--date",
        day,
        "--job",
        "analytics",
        "--job",
        "churn_scoring",
        stdout=io.StringIO(),
    )
    return JobRun.objects.filter(job="churn_scoring", business_date=day).latest("id")


def test_the_churn_job_runs_after_the_analytics_job():
    order = [job.name for job in nightly_jobs()]
    assert order.index("analytics") < order.index("churn_scoring")


def test_the_night_scores_every_member_and_counts_them_by_band_and_decile():
    history_build()
    # The night of 1 July scores as of 30 June, the last complete day.
    run = _night("2026-07-01")

    assert run.status == JobRun.Status.SUCCEEDED, run.error
    assert run.rows == 500
    details = run.details
    assert details["scored"] == details["figures_updated"] == 500
    assert details["retrained"] is True
    assert details["model_as_of"] == "2026-06-30"
    assert details["high"] + details["medium"] + details["low"] == 500
    # Training and scoring are timed apart: a night that retrains is not slow scoring.
    assert {"train_seconds", "score_seconds"} <= set(details)
    assert not MemberFigures.objects.filter(churn_probability__isnull=True).exists()

    def all_members(metric: str) -> dict[str, int]:
        rows = Rollup.objects.filter(metric=metric, store_key=0, tier_key=0)
        assert {row.period.isoformat() for row in rows} == {"2026-06-30"}
        return {row.dim: int(row.value) for row in rows}

    bands = all_members(metrics.CHURN_BAND_MEMBERS)
    assert bands == {
        band: count
        for band in ("high", "medium", "low")
        if (count := MemberFigures.objects.filter(churn_band=band).count())
    }
    deciles = all_members(metrics.CHURN_DECILE_MEMBERS)
    assert sum(deciles.values()) == 500
    assert set(deciles) <= {str(d) for d in range(10)}
    assert deciles.get("0", 0) == MemberFigures.objects.filter(churn_probability__lt=0.1).count()
    high = sum(count for decile, count in deciles.items() if int(decile) >= 7)
    assert high == bands.get("high", 0)


def test_the_model_is_trained_again_only_once_it_is_a_week_old():
    history_build()
    # Each night scores as of the day before it.
    _night("2026-06-24")
    again = _night("2026-06-24")
    six_days = _night("2026-06-30")
    a_week = _night("2026-07-01")

    assert again.details["retrained"] is False
    assert six_days.details["retrained"] is False
    assert six_days.details["model_as_of"] == "2026-06-23"
    assert a_week.details["retrained"] is True
    assert list(ChurnModel.objects.values_list("as_of", flat=True).order_by("as_of")) == [
        datetime.date(2026, 6, 23),
        datetime.date(2026, 6, 30),
    ]
