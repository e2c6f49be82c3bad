"""Access checks for the back office, shared by every app's staff views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

BACKOFFICE_PERMISSION = "members.use_backoffice"


def user_has_mfa(user) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def staff_required(*perms: str) -> Callable:
    """Require a logged-in user with back-office access and every permission named.

    With STAFF_REQUIRE_MFA on, a staff user without TOTP is sent to enrol it first.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user.has_perm(BACKOFFICE_PERMISSION) or not user.has_perms(perms):
                raise PermissionDenied
            if settings.STAFF_REQUIRE_MFA and not user_has_mfa(user):
                messages.warning(
                    request, _("Set up an authenticator app before using the back office.")
                )
                return redirect("mfa_activate_totp")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
