"""The Jobs page of the back office: the nightly jobs' runs, their progress and failures.

Read-only, for the roles with `members.view_jobs` (administrator, auditor, store manager).
While a run is going, htmx reloads the table (or the run's status) every few seconds; without
JavaScript a <noscript> refresh does the same.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from .jobs import ALREADY_RUNNING, INTERRUPTED, job_choices, job_run_get, job_run_list
from .models import JobRun
from .permissions import staff_required

PERMISSION = "members.view_jobs"
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


def _figures(details: dict[str, Any]) -> list[tuple[str, Any]]:
    """The job's own figures that fit on a line (lists are shown on the run's page)."""
    return [
        (key, value)
        for key, value in details.items()
        if key != "failed" and not isinstance(value, list | dict)
    ]


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
            "figures": _figures(run.details),
        }
        for run in (page.object_list if page is not None else [])
    ]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
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
        (key, json.dumps(value, ensure_ascii=False, indent=2, default=str), len(value))
        for key, value in run.details.items()
        if isinstance(value, list | dict)
    ]
    context = {
        "run": run,
        "title": dict(job_choices()).get(run.job, run.job),
        "error_summary": _error_summary(run),
        # The full text (a traceback) of an error that is not one of the runner's own codes.
        "error_text": "" if run.error in ERROR_EXPLANATIONS else run.error,
        "figures": _figures(run.details),
        "detail_lists": details,
    }
    template = _fragment_or_page(request, "staff/jobs_detail.html", "status")
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
