"""Back-office views for members."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def _todo(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    raise NotImplementedError


home = member_search = member_enrol = member_detail = _todo
member_reveal_phone = audit_log = _todo
