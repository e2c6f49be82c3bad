"""Back-office pages for the CSV member import: upload, progress and report, error CSV.

The upload is checked as a whole at once (a file that is not UTF-8 CSV with the header gets
a form error and nothing is written); the rows are imported by a Celery task, in-process when
there is no broker. The report page polls with htmx while the import runs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
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
    COLUMNS,
    MAX_ERRORS_SHOWN,
    ImportFileError,
    import_error_message,
    member_import_error_list,
    member_import_get,
    member_import_list,
    member_import_start,
)
from .models import MemberImport
from .permissions import staff_required
from .tasks import member_import_task

PERMISSION = "members.import_members"
MAX_UPLOAD_BYTES = 100 * 1024 * 1024


class MemberImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("UTF-8, with a header row; up to 100 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 100 MB; split it in parts."))
        return upload


@require_http_methods(["GET", "POST"])
@staff_required(PERMISSION)
def member_import(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = MemberImportForm(request.POST, request.FILES)
    else:
        form = MemberImportForm()
    if form.is_bound and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            member_import = member_import_start(
                file_name=upload.name, content=upload.read(), actor=request.user
            )
        except ImportFileError as exc:
            form.add_error("file", str(exc))
        else:
            # After commit, so a worker on another machine finds the row; with no broker the
            # task runs right here and the report page opens finished.
            transaction.on_commit(lambda: member_import_task.delay(member_import.pk), robust=True)
            return redirect("staff:member-import-detail", import_id=member_import.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request,
        "staff/member_import.html",
        {"form": form, "columns": COLUMNS, "imports": member_import_list()},
        status=status,
    )


def _import_or_404(import_id: int) -> MemberImport:
    member_import = member_import_get(import_id=import_id)
    if member_import is None:
        raise Http404(_("No such import."))
    return member_import


@require_GET
@staff_required(PERMISSION)
def member_import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    member_import = _import_or_404(import_id)
    errors = [
        (error, import_error_message(error))
        for error in member_import_error_list(member_import=member_import)[:MAX_ERRORS_SHOWN]
    ]
    context = {"member_import": member_import, "errors": errors, "max_shown": MAX_ERRORS_SHOWN}
    fragment = request.htmx and not request.htmx.history_restore_request
    template = "staff/member_import_detail.html" + ("#status" if fragment else "")
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


@require_GET
@staff_required(PERMISSION)
def member_import_errors_csv(request: HttpRequest, import_id: int) -> StreamingHttpResponse:
    member_import = _import_or_404(import_id)
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield "\ufeff"  # so Excel reads the file as UTF-8
        yield writer.writerow([_("line"), "source_id", _("column"), _("problem")])
        for error in member_import_error_list(member_import=member_import).iterator():
            yield writer.writerow(
                [error.line, error.source_id, error.column, import_error_message(error)]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stem = member_import.file_name.rsplit(".", 1)[0] or "import"
    response["Content-Disposition"] = (
        f'attachment; filename="import-{member_import.pk}-errors.csv"; '
        f"filename*=UTF-8''{quote(stem, safe='')}-errors.csv"
    )
    return response
