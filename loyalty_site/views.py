"""Site-wide views that belong to no app."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    raise NotImplementedError
