"""The campaigns' nightly job: the results of running and recently completed campaigns."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from analytics.figures import day_end, figures_day

from .results import campaign_results_refresh, campaigns_due_for_results


def campaign_results_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Refresh the results of every campaign whose window is open or closed less than a day
    ago, as of the end of the day before the run's date (the last complete day, as the
    analytics figures are): a rerun for the same date stores the same figures."""
    now = day_end(day=figures_day(business_date))
    campaigns = campaigns_due_for_results(now=now)
    for campaign in campaigns:
        campaign_results_refresh(campaign=campaign, now=now)
    return len(campaigns), {"campaigns": len(campaigns)}


def register() -> None:
    """Called from `CampaignsConfig.ready()`."""
    from core.jobs import nightly_job_register

    # After the analytics figures (50) and churn scores (60): a campaign page read in the
    # morning shows results as of the same day as the dashboards.
    nightly_job_register(
        name="campaign_results",
        order=70,
        function=campaign_results_job,
        label=_("Campaign results"),
        figures={"campaigns": _("Campaigns")},
    )
