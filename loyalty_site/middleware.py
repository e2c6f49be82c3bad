"""Headers every response of the site carries (static files excepted: WhiteNoise answers
them before this middleware is reached)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

# The staff pages may scan a member's card with the device's camera; nothing here uses the
# microphone, location, payments or USB, so no page (nor anything it embeds) may ask.
PERMISSIONS_POLICY = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"


class PrivacyHeadersMiddleware:
    """`Cache-Control: no-store` and a `Permissions-Policy` on every page and API answer.

    The portal shows a member's card, points and profile; the staff pages and the POS API
    show members' data. Kept by no browser cache or proxy, such a page cannot be replayed
    by the next user of a shared till or phone (Back, history), nor served to someone
    else by a cache in between. Pages without personal data (log-in, health check) are
    not worth caching either, so the rule has no exceptions to get wrong.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        patch_cache_control(response, no_store=True)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


# The POS API (loyalty_site/api.py): a till authenticates every request with its token and
# keeps no session, sees no flash messages and no log-in. The middleware below, Django's
# own everywhere else, does none of its work on those requests.
API_PATH_PREFIX = "/api/"


class _NotOnApi:
    """Django's middleware (the class after this one), passed by on API requests."""

    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PATH_PREFIX):
            return self.on_api(request)
        return super().__call__(request)  # type: ignore[misc]

    def on_api(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


class SessionMiddleware(_NotOnApi, sessions_middleware.SessionMiddleware):
    pass


class AuthenticationMiddleware(_NotOnApi, auth_middleware.AuthenticationMiddleware):
    def on_api(self, request: HttpRequest) -> HttpResponse:
        request.user = AnonymousUser()  # the till is its token (request.auth), no login
        return self.get_response(request)


class MessageMiddleware(_NotOnApi, messages_middleware.MessageMiddleware):
    pass
