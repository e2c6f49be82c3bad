"""Back-office pages for the CSV imports of purchases and opening balances: upload, progress
and report, error CSV. The same design as members/import_views.py: the upload is checked as
a whole at once, the rows are imported by a Celery task (in-process without a broker), and
the report page polls with htmx while the import runs."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from django import forms
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from members.permissions import staff_required

from .imports import (
    COLUMNS,
    MAX_ERRORS_SHOWN,
    ImportFileError,
    import_error_message,
    points_import_error_list,
    points_import_get,
    points_import_list,
    points_import_start,
)
from .models import PointsImport
from .tasks import points_import_task

PERMISSION = "points.import_points"
MAX_UPLOAD_BYTES = 200 * 1024 * 1024

# Per kind: the URL names and the words of the pages.
PAGES: dict[str, dict[str, Any]] = {
    PointsImport.Kind.PURCHASES: {
        "url": "staff:purchase-import",
        "detail_url": "staff:purchase-import-detail",
        "errors_url": "staff:purchase-import-errors",
        "title": gettext_lazy("Import purchases from CSV"),
        "ref": gettext_lazy("Receipt"),
        "explain": gettext_lazy(
            "Every row is checked. Good rows are recorded as purchases and earn points by the "
            "earning rules; bad rows are listed with their line number and reason and nothing "
            "of them is written. A receipt imported before is skipped, so you can fix the bad "
            "rows and upload the same file again."
        ),
        "example": (
            "store,receipt_no,member_no,phone,occurred_at,amount,channel,category,sku\n"
            "SH001,R20260410-0001,M1234567890,,2026-04-10T14:05:00,128.50,store,cosmetics,LIP01"
        ),
    },
    PointsImport.Kind.BALANCES: {
        "url": "staff:balance-import",
        "detail_url": "staff:balance-import-detail",
        "errors_url": "staff:balance-import-errors",
        "title": gettext_lazy("Import opening point balances from CSV"),
        "ref": "source_id",
        "explain": gettext_lazy(
            "Every row is checked. Each good row adds its points to the member as one lot "
            "that expires at the end of expires_on (Beijing time); bad rows are listed with "
            "their line number and reason and nothing of them is written. A source_id "
            "imported before is skipped, so you can fix the bad rows and upload the same "
            "file again."
        ),
        "example": (
            "source_id,member_no,phone,points,expires_on,earned_on\n"
            "OLD-000123,,13812345678,2500,2027-06-30,2026-06-01"
        ),
    },
}


class PointsImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("UTF-8, with a header row; up to 200 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 200 MB; split it in parts."))
        return upload


def _upload(request: HttpRequest, kind: str) -> HttpResponse:
    page = PAGES[kind]
    if request.method == "POST":
        form = PointsImportForm(request.POST, request.FILES)
    else:
        form = PointsImportForm()
    if form.is_bound and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            points_import = points_import_start(
                kind=kind, file_name=upload.name, content=upload.read(), actor=request.user
            )
        except ImportFileError as exc:
            form.add_error("file", str(exc))
        else:
            # After commit, so a worker on another machine finds the row; with no broker the
            # task runs right here and the report page opens finished.
            transaction.on_commit(lambda: points_import_task.delay(points_import.pk), robust=True)
            return redirect(page["detail_url"], import_id=points_import.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request,
        "points/staff/points_import.html",
        {
            "form": form,
            "page": page,
            "columns": COLUMNS[kind],
            "imports": points_import_list(kind=kind),
        },
        status=status,
    )


def _import_or_404(import_id: int, kind: str) -> PointsImport:
    points_import = points_import_get(import_id=import_id, kind=kind)
    if points_import is None:
        raise Http404(_("No such import."))
    return points_import


def _detail(request: HttpRequest, import_id: int, kind: str) -> HttpResponse:
    points_import = _import_or_404(import_id, kind)
    errors = [
        (error, import_error_message(error))
        for error in points_import_error_list(points_import=points_import)[:MAX_ERRORS_SHOWN]
    ]
    context = {
        "points_import": points_import,
        "page": PAGES[kind],
        "errors": errors,
        "max_shown": MAX_ERRORS_SHOWN,
    }
    fragment = request.htmx and not request.htmx.history_restore_request
    template = "points/staff/points_import_detail.html" + ("#status" if fragment else "")
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _errors_csv(request: HttpRequest, import_id: int, kind: str) -> StreamingHttpResponse:
    points_import = _import_or_404(import_id, kind)
    writer = csv.writer(_Echo())
    ref = "receipt_no" if kind == PointsImport.Kind.PURCHASES else "source_id"

    def rows() -> Iterator[str]:
        yield "\ufeff"  # so Excel reads the file as UTF-8
        yield writer.writerow([_("line"), ref, _("column"), _("problem")])
        for error in points_import_error_list(points_import=points_import).iterator():
            yield writer.writerow(
                [error.line, error.ref, error.column, import_error_message(error)]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stem = points_import.file_name.rsplit(".", 1)[0] or "import"
    response["Content-Disposition"] = (
        f'attachment; filename="import-{points_import.pk}-errors.csv"; '
        f"filename*=UTF-8''{quote(stem, safe='')}-errors.csv"
    )
    return response


@require_http_methods(["GET", "POST"])
@staff_required(PERMISSION)
def purchase_import(request: HttpRequest) -> HttpResponse:
    return _upload(request, PointsImport.Kind.PURCHASES)


@require_GET
@staff_required(PERMISSION)
def purchase_import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    return _detail(request, import_id, PointsImport.Kind.PURCHASES)


@require_GET
@staff_required(PERMISSION)
def purchase_import_errors_csv(request: HttpRequest, import_id: int) -> StreamingHttpResponse:
    return _errors_csv(request, import_id, PointsImport.Kind.PURCHASES)


@require_http_methods(["GET", "POST"])
@staff_required(PERMISSION)
def balance_import(request: HttpRequest) -> HttpResponse:
    return _upload(request, PointsImport.Kind.BALANCES)


@require_GET
@staff_required(PERMISSION)
def balance_import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    return _detail(request, import_id, PointsImport.Kind.BALANCES)


@require_GET
@staff_required(PERMISSION)
def balance_import_errors_csv(request: HttpRequest, import_id: int) -> StreamingHttpResponse:
    return _errors_csv(request, import_id, PointsImport.Kind.BALANCES)
