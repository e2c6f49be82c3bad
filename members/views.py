"""Member portal views (phone-sized first)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def _todo(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    raise NotImplementedError


home = profile = consent = privacy_notice = data_export = account_close = _todo
