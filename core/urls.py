"""URLs of the platform's back-office pages (the CSV imports), mounted under /staff/."""

from __future__ import annotations

from django.urls import path

from . import import_views

staff_patterns = [
    path("imports/<int:run_id>/", import_views.import_detail, name="import-detail"),
    path("imports/<int:run_id>/errors.csv", import_views.import_errors_csv, name="import-errors"),
    path("imports/<slug:kind>/", import_views.import_upload, name="import-upload"),
    # The addresses before the one import framework, by the old kinds' names.
]
for _kind in ("members", "purchases", "balances"):
    staff_patterns += [
        path(
            f"{_kind}/import/",
            import_views.import_legacy_redirect,
            {"kind": _kind},
            name=f"{_kind}-import-old",
        ),
        path(
            f"{_kind}/import/<int:run_id>/",
            import_views.import_legacy_redirect,
            {"kind": _kind},
            name=f"{_kind}-import-detail-old",
        ),
        path(
            f"{_kind}/import/<int:run_id>/errors.csv",
            import_views.import_legacy_redirect,
            {"kind": _kind, "errors": True},
            name=f"{_kind}-import-errors-old",
        ),
    ]
