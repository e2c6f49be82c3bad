"""The nightly job refreshes the results of running and recently completed campaigns."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.conf import settings

from campaigns.models import Campaign, CampaignResult
from core.jobs import job_run, nightly_jobs
from core.models import JobRun
from tests.campaigns.results_world import DAY, LAUNCH, SHANGHAI, build_world

# Run for 2026-03-10: the figures are as of the end of 2026-03-09, i.e. 03-10 00:00 Beijing.
RUN_DATE = datetime.date(2026, 3, 10)
AS_OF = datetime.datetime(2026, 3, 10, tzinfo=SHANGHAI)


def campaign(name: str, **fields) -> Campaign:
    base = {"kind": Campaign.Kind.BONUS, "bonus_points": 10, "salt": name, "launched_at": LAUNCH}
    return Campaign.objects.create(name=name, **(base | fields))


@pytest.fixture
def world(db):
    return build_world()


def test_the_job_comes_after_the_analytics_figures_and_has_a_beat_time():
    names = [job.name for job in nightly_jobs()]
    assert names.index("analytics") < names.index("campaign_results")
    assert names.index("churn_scoring") < names.index("campaign_results")
    assert settings.CELERY_BEAT_SCHEDULE["campaign_results"]["args"] == ("campaign_results",)


def test_the_job_refreshes_open_and_just_closed_campaigns_only(world):
    running = world.campaign  # window [03-02 10:00, 03-16 10:00): open
    # Closed 03-09 10:00, less than a day before 03-10 00:00: refreshed once more.
    just_closed = campaign(
        "just closed", status=Campaign.Status.COMPLETED, conversion_window_days=7
    )
    # Closed 03-03 10:00, six days before, its final figures stored: they no longer change.
    long_closed = campaign(
        "long closed", status=Campaign.Status.COMPLETED, conversion_window_days=1
    )
    final = CampaignResult.objects.create(
        campaign=long_closed, window_end=LAUNCH + DAY, figures={"final": True}
    )
    draft = campaign("draft", status=Campaign.Status.DRAFT, launched_at=None)
    cancelled = campaign("cancelled", status=Campaign.Status.CANCELLED)

    run = job_run(name="campaign_results", business_date=RUN_DATE)

    assert run.status == JobRun.Status.SUCCEEDED
    assert run.details == {"campaigns": 2}
    refreshed = set(
        CampaignResult.objects.exclude(pk=final.pk).values_list("campaign_id", flat=True)
    )
    assert refreshed == {running.pk, just_closed.pk}
    assert not {long_closed.pk, draft.pk, cancelled.pk} & refreshed
    assert CampaignResult.objects.get(pk=final.pk).figures == {"final": True}
    result = CampaignResult.objects.get(campaign=running)
    # Open window: figures to the end of the run's previous day, and it says so.
    assert result.window_end == AS_OF
    assert "window_open" in result.figures["notes"]
    # By then: t1 ¥150, t2 ¥120 (its return at L + 5 d is in), t3 −¥100; c1 ¥60.
    assert result.figures["treatment"]["revenue_total"] == 170
    assert result.figures["control"]["revenue_total"] == 60
    assert Decimal(result.figures["cost"]["points_cost"]) == Decimal("4.20")


def test_running_the_job_twice_for_a_date_stores_the_same_figures(world):
    job_run(name="campaign_results", business_date=RUN_DATE)
    first = CampaignResult.objects.get(campaign=world.campaign).figures
    job_run(name="campaign_results", business_date=RUN_DATE)
    assert CampaignResult.objects.count() == 1
    assert CampaignResult.objects.get(campaign=world.campaign).figures == first


def test_a_window_closed_a_day_ago_is_left_as_it_was(world):
    job_run(name="campaign_results", business_date=LAUNCH.date() + 15 * DAY)
    stored = CampaignResult.objects.get(campaign=world.campaign)
    # The window closed 03-16 10:00; the run for 03-18 is as of 03-18 00:00 — 38 hours on.
    run = job_run(name="campaign_results", business_date=LAUNCH.date() + 16 * DAY)
    assert run.details == {"campaigns": 0}
    assert CampaignResult.objects.get(campaign=world.campaign).computed_at == stored.computed_at


def test_a_window_whose_end_was_never_computed_gets_its_final_figures_once(world):
    # The job did not run while the window was open (a campaign launched back-dated, or
    # nights missed): the first run after gets the figures up to the window's end.
    run = job_run(name="campaign_results", business_date=LAUNCH.date() + 16 * DAY)
    assert run.details == {"campaigns": 1}
    result = CampaignResult.objects.get(campaign=world.campaign)
    assert result.window_end == LAUNCH + 14 * DAY
    assert "window_open" not in result.figures["notes"]
    again = job_run(name="campaign_results", business_date=LAUNCH.date() + 17 * DAY)
    assert again.details == {"campaigns": 0}
