"""The POS API: one NinjaAPI at /api/v1/ that mounts each app's router.

Every error is JSON `{"error": "<code>", "detail": "<message>"}`: the handlers below turn
ninja's own errors (validation, authentication, unparseable bodies) and unknown URLs under
/api/v1/ into that shape, so a till only ever has to parse one kind of error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Router
from ninja.errors import AuthenticationError, HttpError, ValidationError

from members.api import router as members_router
from members.api_common import ApiTokenAuth, error_body, invalid_body
from points.api import router as points_router

logger = logging.getLogger(__name__)


def _json_method_not_allowed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """ninja answers a known URL with the wrong method in plain text; make it our JSON."""

    @functools.wraps(view)  # keeps csrf_exempt: tills send no CSRF token
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if not isinstance(response, HttpResponseNotAllowed):
            return response
        detail = _("This endpoint does not accept %(method)s.") % {"method": request.method}
        json_response = api.create_response(
            request, error_body("method_not_allowed", detail), status=405
        )
        json_response["Allow"] = response["Allow"]
        return json_response

    return wrapped


# No request a till sends comes near this (a purchase of 1,000 lines is about 100 KB); a
# bigger body is refused before it is read, as a JSON 413.
MAX_BODY_BYTES = 1024 * 1024


def _body_size_limit(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads no body either then
        if length <= MAX_BODY_BYTES:
            return view(request, *args, **kwargs)
        detail = _("The request body is larger than %(limit)s bytes.") % {"limit": MAX_BODY_BYTES}
        return api.create_response(request, error_body("too_large", detail), status=413)

    return wrapped


class PosApi(NinjaAPI):
    @property
    def urls(self) -> tuple[list[Any], str, str]:
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            pattern.callback = _body_size_limit(_json_method_not_allowed(pattern.callback))
        return patterns, app_name, namespace


api = PosApi(
    title="会员 Loyalty POS API",
    version="1",
    description=(
        "For tills and e-shops. Authenticate every request with "
        "`Authorization: Bearer <token>`; a token belongs to one store and is created with "
        "`manage.py create_api_token --store CODE`. Every error is "
        '`{"error": "<code>", "detail": "<message>"}`: **400** `invalid` (with `fields`, '
        "what is wrong with each field) for input outside what this document states, "
        "**413** `too_large` for a body over 1 MB. No text may contain a NUL character."
    ),
    urls_namespace="api",
    auth=ApiTokenAuth(),
    # The Swagger page would load its scripts from a CDN, which the CSP forbids; the
    # OpenAPI document at /api/v1/openapi.json is the contract.
    docs_url=None,
)

api.add_router("/members", members_router)
api.add_router("", points_router)  # /purchases, /returns, /members/{no}/points, /rewards, …

HTTP_ERROR_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "throttled",
}


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields: dict[str, str] = {}
    for error in exc.errors:
        loc = [str(part) for part in error.get("loc", ())]
        # ("body", "<param>", "phone") or ("query", "phone"): keep the field's own name.
        name_parts = loc[2:] if loc[:1] == ["body"] else loc[1:]
        name = ".".join(name_parts) or (loc[0] if loc else "request")
        fields.setdefault(name, _validation_message(error))
    return api.create_response(request, invalid_body(fields), status=400)


def _validation_message(error: dict) -> str:
    """The till's message for one of pydantic's errors: translated, with the limit that was
    broken (the limits are the ones the OpenAPI document states)."""
    kind = error.get("type", "")
    ctx = error.get("ctx", {})
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return _("This field is required.")
    if kind == "string_too_long":
        return _("Enter at most %(max)s characters.") % {"max": ctx.get("max_length")}
    if kind == "too_long":
        return _("Give at most %(max)s items.") % {"max": ctx.get("max_length")}
    if kind == "string_pattern_mismatch":
        return _("This value contains a character that is not allowed (NUL).")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        limits = {
            "greater_than": _("Enter a number more than %(limit)s."),
            "greater_than_equal": _("Enter a number of at least %(limit)s."),
            "less_than": _("Enter a number less than %(limit)s."),
            "less_than_equal": _("Enter a number of at most %(limit)s."),
        }
        limit = next(iter(ctx.values()), "")
        return limits[kind] % {"limit": limit}
    if kind == "decimal_max_places":
        return _("Enter at most %(places)s decimal places.") % {"places": ctx.get("decimal_places")}
    if kind in ("finite_number", "decimal_parsing", "decimal_type", "float_parsing"):
        return _("Enter a number, such as 128.50.")
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return _("Enter a whole number.")
    if kind.startswith("date"):
        return _("Enter a valid date (YYYY-MM-DD).")
    if kind == "literal_error":
        return _("Choose one of: %(choices)s.") % {
            "choices": error.get("ctx", {}).get("expected", "")
        }
    if kind in ("string_type", "bool_type"):
        return _("This value has the wrong type.")
    return str(error.get("msg", _("This value is not valid.")))


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    detail = exc.message if exc.message != "Unauthorized" else _("An API token is required.")
    response = api.create_response(request, error_body("unauthorized", detail), status=401)
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = HTTP_ERROR_CODES.get(exc.status_code, "error")
    detail = str(exc)
    if exc.status_code == 400 and detail.startswith("Cannot parse request body"):
        detail = _("The request body is not valid JSON (UTF-8).")  # ninja's, untranslated
    return api.create_response(request, error_body(code, detail), status=exc.status_code)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(
        request, error_body("not_found", _("There is no such API endpoint.")), status=404
    )


@api.exception_handler(Exception)
def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    if settings.DEBUG:
        raise exc  # a developer wants Django's debug page
    # Logged with the traceback like Django's own 500s; the till gets JSON, not an HTML page.
    logger.exception("POS API error on %s %s", request.method, request.path)
    return api.create_response(
        request,
        error_body("server_error", _("Something went wrong on our side. Try again later.")),
        status=500,
    )


# Last, so it only sees URLs no router matched: /api/v1/… answers JSON 404s, not HTML pages.
_fallback = Router()
_FALLBACK_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@_fallback.api_operation(_FALLBACK_METHODS, "", include_in_schema=False, auth=None)
def api_root(request: HttpRequest) -> None:
    raise Http404


@_fallback.api_operation(_FALLBACK_METHODS, "{path:rest}", include_in_schema=False, auth=None)
def unknown_endpoint(request: HttpRequest, rest: str) -> None:
    raise Http404


api.add_router("", _fallback)
