"""Back-office pages of every CSV import kind: upload, progress and report, error CSV.

One set of views parameterised by the kind (`core.imports.registry`); each checks the
kind's own permission through the back office's access check. The upload is checked as a
whole at once (a file that is not UTF-8 CSV with the header gets a form error and nothing
is written); the rows are imported by a Celery task, in-process when there is no broker.
The report page polls with htmx while the import runs. The pages of the time before the
one framework (`/staff/members/import/…`, `/staff/purchases/import/…`) redirect here.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from urllib.parse import quote

from django import forms
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from .imports import (
    MAX_ERRORS_SHOWN,
    ImportFileError,
    ImportKind,
    import_error_list,
    import_error_message,
    import_get,
    import_kind_get,
    import_kinds,
    import_list,
    import_start,
)
from .imports.registry import hooks
from .models import ImportRun
from .tasks import import_run_task


class ImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def __init__(self, *args, kind: ImportKind, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_mb = kind.page.max_upload_mb
        self.fields["file"].help_text = _("UTF-8, with a header row; up to %(size)s MB.") % {
            "size": self.max_mb
        }
        for name, label, help_text in kind.page.options:
            self.fields[name] = forms.BooleanField(label=label, help_text=help_text, required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.max_mb * 1024 * 1024:
            raise forms.ValidationError(
                _("The file is larger than %(size)s MB; split it in parts.") % {"size": self.max_mb}
            )
        return upload


def _kind_or_404(name: str) -> ImportKind:
    try:
        return import_kind_get(name)
    except KeyError:
        raise Http404(_("No such import.")) from None


def _guarded(kind: ImportKind, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The view behind the back office's access check with the kind's permission."""
    assert hooks.staff_required is not None, "members registers the back-office check"
    return hooks.staff_required(kind.permission)(view)


@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest, kind: str) -> HttpResponse:
    spec = _kind_or_404(kind)
    return _guarded(spec, _upload)(request, spec)


def _upload(request: HttpRequest, kind: ImportKind) -> HttpResponse:
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES, kind=kind)
    else:
        form = ImportForm(kind=kind)
    if form.is_bound and form.is_valid():
        upload = form.cleaned_data["file"]
        options = {
            name: True for name, _label, _help in kind.page.options if form.cleaned_data[name]
        }
        try:
            run = import_start(
                kind=kind.name,
                file_name=upload.name,
                content=upload.read(),
                actor=request.user,
                options=options,
            )
        except ImportFileError as exc:
            form.add_error("file", str(exc))
        else:
            # After commit, so a worker on another machine finds the row; with no broker the
            # task runs right here and the report page opens finished.
            transaction.on_commit(lambda: import_run_task.delay(run.pk), robust=True)
            return redirect("staff:import-detail", run_id=run.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request,
        "core/staff/import.html",
        {
            "form": form,
            "kind": kind,
            "imports": import_list(kind=kind.name),
            # The other files this person may import, one click away.
            "other_kinds": [
                other
                for other in import_kinds()
                if other.name != kind.name and request.user.has_perm(other.permission)
            ],
        },
        status=status,
    )


def _run_or_404(run_id: int) -> tuple[ImportRun, ImportKind]:
    run = import_get(run_id=run_id)
    if run is None:
        raise Http404(_("No such import."))
    return run, _kind_or_404(run.kind)


@require_GET
def import_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run, kind = _run_or_404(run_id)
    return _guarded(kind, _detail)(request, run, kind)


def _detail(request: HttpRequest, run: ImportRun, kind: ImportKind) -> HttpResponse:
    errors = [
        (error, import_error_message(error, kind=kind.name))
        for error in import_error_list(run=run)[:MAX_ERRORS_SHOWN]
    ]
    context = {"run": run, "kind": kind, "errors": errors, "max_shown": MAX_ERRORS_SHOWN}
    fragment = request.htmx and not request.htmx.history_restore_request
    template = "core/staff/import_detail.html" + ("#status" if fragment else "")
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


@require_GET
def import_errors_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    run, kind = _run_or_404(run_id)
    return _guarded(kind, _errors_csv)(request, run, kind)


def _errors_csv(request: HttpRequest, run: ImportRun, kind: ImportKind) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield "\ufeff"  # so Excel reads the file as UTF-8
        yield writer.writerow([_("line"), kind.ref_column, _("column"), _("problem")])
        for error in import_error_list(run=run).iterator():
            yield writer.writerow(
                [error.line, error.ref, error.column, import_error_message(error, kind=kind.name)]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stem = run.file_name.rsplit(".", 1)[0] or "import"
    response["Content-Disposition"] = (
        f'attachment; filename="import-{run.pk}-errors.csv"; '
        f"filename*=UTF-8''{quote(stem, safe='')}-errors.csv"
    )
    return response


# --- The addresses of before ------------------------------------------------------------


@require_GET
def import_legacy_redirect(
    request: HttpRequest, kind: str, run_id: int | None = None, errors: bool = False
) -> HttpResponse:
    """An old page's address, for those who may see the kind's pages: member imports kept
    their ids, points imports are found by the id they had (`ImportRun.legacy_id`)."""
    spec = _kind_or_404(kind)
    return _guarded(spec, _legacy_redirect)(request, spec, run_id, errors)


def _legacy_redirect(
    request: HttpRequest, kind: ImportKind, run_id: int | None, errors: bool
) -> HttpResponse:
    if run_id is None:
        return redirect("staff:import-upload", kind=kind.name, permanent=True)
    run = (
        ImportRun.objects.filter(kind=kind.name, legacy_id=run_id).only("pk").first()
        or ImportRun.objects.filter(kind=kind.name, pk=run_id, legacy_id=None).only("pk").first()
    )
    if run is None:
        raise Http404(_("No such import."))
    target = "staff:import-errors" if errors else "staff:import-detail"
    return redirect(target, run_id=run.pk, permanent=True)
