"""What every app stands on but is not membership: the runs of the scheduled jobs.

`JobRun` is written by the job runner (core/jobs.py) and read by the Jobs page. It was
members' model until the platform layer moved out of members; its table kept its name.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobRun(models.Model):
    """One run of a scheduled job for a business date: what it did and how it ended.

    A running job reports `progress_done` of `progress_total` between its batches (both
    null when the job does not report progress). A run whose worker died stays `running`
    until the next run of the job marks it failed with the error `interrupted`; a run refused
    because the job was already running elsewhere is `skipped` (see core/jobs.py).
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    job = models.CharField(_("job"), max_length=50)
    business_date = models.DateField(_("business date"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    seconds = models.FloatField(_("seconds"), null=True, blank=True)
    rows = models.BigIntegerField(_("rows touched"), default=0)
    details = models.JSONField(_("details"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    progress_done = models.BigIntegerField(_("done"), null=True, blank=True)
    progress_total = models.BigIntegerField(_("to do"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        indexes = [models.Index(fields=["job", "-business_date"], name="members_jobrun_job_idx")]
        permissions = [
            ("view_jobs", _("Can see scheduled job runs")),
            ("run_jobs", _("Can run a nightly job again for a date")),
        ]
        # The table the members app created before the job runner moved here: it keeps its
        # name, so no run is lost (core migration 0001).
        db_table = "members_jobrun"

    def __str__(self) -> str:
        return f"{self.job} {self.business_date} {self.status}"

    @property
    def percent(self) -> int | None:
        """Progress in whole percent, or None when the job has not said how much there is."""
        if self.progress_total is None or self.progress_done is None:
            return None
        if self.progress_total <= 0:
            return 100
        return min(100, self.progress_done * 100 // self.progress_total)
