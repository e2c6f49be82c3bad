"""Back-office upload page for the CSV member import."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def member_import(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError
