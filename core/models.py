"""What every app stands on but is not membership: the runs of the scheduled jobs and the
CSV import framework's records.

`JobRun` is written by the job runner (core/jobs.py) and read by the Jobs page. It was
members' model until the platform layer moved out of members; its table kept its name.

Every kind of import (members, purchases, opening balances, and whatever an app registers
in `core.imports.registry`) shares `ImportRun` and `ImportRowError`, so there is one set of
pages, one command base and one progress type. The file itself is kept in the run's row, not
on disk, so a Celery worker on another machine can read what the web server received.
Counters move in the same transaction as each batch, so the progress shown is what is really
written.
"""

from __future__ import annotations

from django.conf import settings
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


class ImportRun(models.Model):
    """One run of a CSV import of one kind: the file, its options, progress and outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    # The registered kind's name (`core.imports.registry`): members, purchases, balances.
    kind = models.CharField(_("kind"), max_length=20)
    file_name = models.CharField(_("file"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    size = models.PositiveBigIntegerField(_("size"), default=0)
    content = models.BinaryField(verbose_name=_("file content"))
    columns = models.JSONField(_("columns"), default=list, blank=True)
    ignored_columns = models.JSONField(_("ignored columns"), default=list, blank=True)
    # What the person importing chose, e.g. {"history": true} for purchases.
    options = models.JSONField(_("options"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows read"), default=0)
    created_count = models.PositiveIntegerField(_("imported"), default=0)
    existing_count = models.PositiveIntegerField(_("already imported"), default=0)
    bad_count = models.PositiveIntegerField(_("bad rows"), default=0)
    points_posted = models.BigIntegerField(_("points posted"), default=0)
    failure = models.TextField(_("failure"), blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("started by"),
    )
    actor_label = models.CharField(_("started by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # The id the run had before the import tables were one (points imports, whose ids
    # overlapped the member imports'): the old report URLs find the run by it.
    legacy_id = models.PositiveIntegerField(_("earlier id"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        indexes = [models.Index(fields=["kind", "-created_at"], name="core_importrun_kind_idx")]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.is_finished else 0
        return min(100, self.processed_rows * 100 // self.total_rows)

    @property
    def history(self) -> bool:
        return bool(self.options.get("history"))


class ImportRowError(models.Model):
    """One problem with one line of an imported file; a bad line may have several."""

    run = models.ForeignKey(
        ImportRun, on_delete=models.CASCADE, related_name="errors", verbose_name=_("import")
    )
    line = models.PositiveIntegerField(_("line"))
    # The row's own key: source_id, receipt number.
    ref = models.CharField(_("reference"), max_length=100, blank=True)
    column = models.CharField(_("column"), max_length=30, blank=True)
    code = models.CharField(_("problem"), max_length=40)
    # What the message needs besides the code: the value given, the other line, the member.
    params = models.JSONField(default=dict, blank=True, verbose_name=_("parameters"))

    class Meta:
        ordering = ["line", "id"]
        verbose_name = _("import error")
        verbose_name_plural = _("import errors")
        indexes = [models.Index(fields=["run", "line"], name="core_importerror_line_idx")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.line} {self.column} {self.code}"


class ConfigVersion(models.Model):
    """One row whose number goes up with every configuration change (core/config.py): each
    process compares it with the one it read its cached configuration at."""

    version = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="configversion_one_row")
        ]

    def __str__(self) -> str:
        return f"configuration version {self.version}"
