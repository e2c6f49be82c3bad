"""What every POS API router shares: bearer-token auth and the error bodies.

Every error the API returns is `{"error": "<code>", "detail": "<message>"}`, with extra keys
for some codes (`fields` for "invalid", `member_no` for "member_exists"). The schemas here
let each operation declare its error responses, so they appear in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Schema
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from .models import ApiToken
from .selectors import api_token_authenticate
from .services import api_token_mark_used

# No text the API takes may hold a NUL character: PostgreSQL cannot store one in a text
# column (the query would fail, a 500), and no till has a reason to send one. Every string
# the API reads declares this pattern, so the OpenAPI document says so and a NUL is a 400.
NO_NUL = r"^[^\x00]*$"


def text_field(
    default: Any = ...,
    *,
    max_length: int,
    min_length: int | None = None,
    description: str | None = None,
) -> Any:
    """A string field of a request: its length limits, and no NUL character."""
    return Field(
        default,
        min_length=min_length,
        max_length=max_length,
        pattern=NO_NUL,
        description=description,
    )


class ErrorOut(Schema):
    error: str
    detail: str


class InvalidOut(ErrorOut):
    """400: `fields` maps each bad field to what is wrong with it."""

    fields: dict[str, str] = {}


def error_body(code: str, detail: str, **extra: object) -> dict[str, object]:
    return {"error": code, "detail": detail, **extra}


def invalid_body(fields: dict[str, str], detail: str = "") -> dict[str, object]:
    if not detail:
        detail = _("Some fields are not valid: %(fields)s.") % {"fields": ", ".join(fields)}
    return error_body("invalid", detail, fields=fields)


class ApiTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>` → `request.auth` is the `ApiToken`.

    Raises instead of returning None so the 401 can say what was wrong (no header, or a
    token that is unknown, revoked or belongs to a closed store).
    """

    def __call__(self, request: HttpRequest) -> ApiToken | None:
        header = request.headers.get(self.header, "")
        scheme, _sep, raw = header.partition(" ")
        if not header or scheme.lower() != self.openapi_scheme:
            raise AuthenticationError(
                message=_("Send the API token in the header “Authorization: Bearer <token>”.")
            )
        return self.authenticate(request, raw.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        api_token = api_token_authenticate(raw=token)
        if api_token is None:
            raise AuthenticationError(message=_("The API token is invalid or has been revoked."))
        api_token_mark_used(token=api_token)
        return api_token
