"""The Jobs page of the back office: the nightly jobs' runs, their progress and failures.

For the roles with `core.view_jobs` (administrator, auditor, store manager); those with
`core.run_jobs` (administrator) may also run a job again for a date.
While a run is going, htmx reloads the table (or the run's status) every few seconds; without
JavaScript a <noscript> refresh does the same.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from core.jobs import (
    ALREADY_RUNNING,
    INTERRUPTED,
    job_choices,
    job_figure_label,
    job_run_get,
    job_run_list,
    nightly_jobs,
)
from core.models import JobRun
from core.tasks import nightly_job_task

from .permissions import staff_required
from .selectors import audit_detail_value
from .services import job_rerun_request

PERMISSION = "core.view_jobs"
RERUN_PERMISSION = "core.run_jobs"
JOBS_PAGE_SIZE = 50
# What the runner's own error codes mean, for people; other errors are shown as written.
ERROR_EXPLANATIONS = {
    INTERRUPTED: _(
        "Interrupted: the worker stopped during this run. A later run of the job picked up "
        "where it left off."
    ),
    ALREADY_RUNNING: _("Not run: another run of this job was still going. That run does the work."),
}


class JobRunFilterForm(forms.Form):
    """Filters of the Jobs page, from the query string; both optional."""

    job = forms.ChoiceField(label=_("Job"), required=False)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All statuses")), *JobRun.Status.choices],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["job"].choices = [("", _("All jobs")), *job_choices()]


def _fragment_or_page(request: HttpRequest, template: str, fragment: str) -> str:
    # A history restore (back button) needs the whole page, not the fragment.
    if request.htmx and not request.htmx.history_restore_request:
        return f"{template}#{fragment}"
    return template


def _error_summary(run: JobRun) -> str | Promise:
    if run.error in ERROR_EXPLANATIONS:
        return ERROR_EXPLANATIONS[run.error]
    lines = run.error.strip().splitlines()
    return lines[0] if lines else ""


def _figure_value(value: Any) -> str:
    """A figure as text; a time the job stored as ISO 8601 reads as local "Y-m-d H:i"."""
    if isinstance(value, str) and len(value) > 10 and value[10] in "T ":
        moment = parse_datetime(value)
        if moment is not None:
            if timezone.is_aware(moment):
                moment = timezone.localtime(moment)
            return date_format(moment, "Y-m-d H:i")
    return audit_detail_value(value)


def _figures(job: str, details: dict[str, Any]) -> list[tuple[str | Promise, Any]]:
    """The job's own figures that fit on a line, by the names the job gave them (lists are
    shown on the run's page)."""
    return [
        (job_figure_label(job, key), _figure_value(value))
        for key, value in details.items()
        if key != "failed" and not isinstance(value, list | dict)
    ]


class JobRerunForm(forms.Form):
    """Run one job again for a business date (an administrator's back-fill or retry)."""

    job = forms.ChoiceField(label=_("Job"))
    business_date = forms.DateField(
        label=_("Business date"),
        # ISO whatever the language: <input type=date> takes nothing else, and a localized
        # value ("2026/12/07") would show an empty field that posts nothing.
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("The day the job works for, as the nightly run would (Asia/Shanghai)."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: the filter form on the same page has a "job" field too.
        kwargs.setdefault("auto_id", "id_rerun_%s")
        super().__init__(*args, **kwargs)
        self.fields["job"].choices = [(job.name, job.title) for job in nightly_jobs()]
        self.fields["business_date"].initial = timezone.localdate()

    def clean_business_date(self) -> datetime.date:
        day = self.cleaned_data["business_date"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("A job cannot run for a day that has not come yet."))
        return day


@require_GET
@staff_required(PERMISSION)
def job_runs(request: HttpRequest) -> HttpResponse:
    form = JobRunFilterForm(request.GET or None)
    page = None
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        filters = form.cleaned_data if form.is_bound else {}
        runs = job_run_list(job=filters.get("job", ""), status=filters.get("status", ""))
        page = Paginator(runs, JOBS_PAGE_SIZE).get_page(request.GET.get("page"))
    titles = dict(job_choices())
    rows = [
        {
            "run": run,
            "title": titles.get(run.job, run.job),
            "error_summary": _error_summary(run),
            "figures": _figures(run.job, run.details),
        }
        for run in (page.object_list if page is not None else [])
    ]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "rerun_form": JobRerunForm() if request.user.has_perm(RERUN_PERMISSION) else None,
        "page": page,
        "rows": rows,
        "any_running": any(row["run"].status == JobRun.Status.RUNNING for row in rows),
        "filter_query": query.urlencode(),
    }
    template = _fragment_or_page(request, "staff/jobs.html", "runs")
    response = render(request, template, context, status=status)
    # The same URL answers with a fragment or a page: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
@staff_required(PERMISSION)
def job_run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = job_run_get(run_id=run_id)
    if run is None:
        raise Http404(_("No such job run."))
    details = [
        (
            job_figure_label(run.job, key),
            json.dumps(value, ensure_ascii=False, indent=2, default=str),
            len(value),
        )
        for key, value in run.details.items()
        if isinstance(value, list | dict)
    ]
    context = {
        "run": run,
        "title": dict(job_choices()).get(run.job, run.job),
        "error_summary": _error_summary(run),
        # The full text (a traceback) of an error that is not one of the runner's own codes.
        "error_text": "" if run.error in ERROR_EXPLANATIONS else run.error,
        "figures": _figures(run.job, run.details),
        "detail_lists": details,
    }
    template = _fragment_or_page(request, "staff/jobs_detail.html", "status")
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_POST
@staff_required(RERUN_PERMISSION)
def job_rerun(request: HttpRequest) -> HttpResponse:
    """Queue one job again for a date: audited, then run by the worker like a nightly run."""
    form = JobRerunForm(request.POST)
    if not form.is_valid():
        context = {
            "form": JobRunFilterForm(),
            "rerun_form": form,
            "page": None,
            "rows": [],
            "any_running": False,
            "filter_query": "",
        }
        return render(request, "staff/jobs.html", context, status=400)
    name, day = form.cleaned_data["job"], form.cleaned_data["business_date"]
    job_rerun_request(name=name, business_date=day, actor=request.user)
    # After commit, as the import does; with no broker the task runs here and the run is
    # listed finished when the page opens.
    transaction.on_commit(lambda: nightly_job_task.delay(name, day.isoformat()), robust=True)
    messages.success(
        request,
        _("%(job)s for %(date)s was queued; its run is listed below.")
        % {"job": dict(form.fields["job"].choices)[name], "date": day.isoformat()},
    )
    return redirect("staff:jobs")
