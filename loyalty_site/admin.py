"""The Django admin site, held to the same log-in rules as the back office (/staff/).

Django's admin has its own idea of who may enter (`is_staff`) and its own log-in page.
Here the log-in is allauth's (urls.py sends /admin/login/ there, with its rate limits and
the TOTP step), `STAFF_REQUIRE_MFA` asks for an authenticator app exactly as
`members.permissions.staff_required` does, and a logged-in user the admin is not for gets a
page saying so. Django would send them to the log-in page, which sends a logged-in user
straight back to ?next=/admin/: a redirect loop.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from members.permissions import user_has_mfa


class LoyaltyAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and _mfa_ok(request.user)

    def admin_view(self, view: Callable, cacheable: bool = False) -> Callable:
        inner = super().admin_view(view, cacheable)

        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if user.is_authenticated and not self.has_permission(request):
                if request.path == reverse("admin:logout", current_app=self.name):
                    return inner(request, *args, **kwargs)
                if not super(LoyaltyAdminSite, self).has_permission(request):
                    # Staff read the refusal in the back office's frame, members in the portal's.
                    base = (
                        "staff/base.html"
                        if user.has_perm("members.use_backoffice")
                        else "portal/base.html"
                    )
                    return render(request, "account/admin_refused.html", {"base": base}, status=403)
                messages.warning(
                    request, _("Set up an authenticator app before using the admin site.")
                )
                return redirect("mfa_activate_totp")
            return inner(request, *args, **kwargs)

        return wrapped


def _mfa_ok(user) -> bool:
    return not settings.STAFF_REQUIRE_MFA or user_has_mfa(user)
