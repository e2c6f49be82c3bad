"""Account pages of our own beside allauth's: sign-up from a friend's referral link, and a new
password right after a login by code.

Sign-up is allauth's page; a friend's link (`/accounts/signup/?ref=CODE`) only fills in the
referral code, which the shopper can still change or clear.

allauth's "Change password" asks for the old password, and its reset by code goes out by
e-mail only, so a shopper who joined with a phone alone and forgot the password could log in
with an SMS code but never replace the password. A login by code proves the same thing a
reset code does, so for a short while after one the session may set a password without the
old one — once per code login.
"""

from __future__ import annotations

import datetime
import time

from allauth.account.authentication import get_authentication_records
from allauth.account.views import SignupView
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from .selectors import referral_code_clean
from .services import user_password_set_after_code

# How long after a login by code the old password may be skipped: long enough to open the
# profile and type a new password twice, short enough that a phone left unlocked later in
# the day does not also hand over the password.
PASSWORD_AFTER_CODE_WINDOW = datetime.timedelta(minutes=15)

# The time of the code login that already set a password. allauth keeps its records for the
# whole session, so without this one code login could set passwords for 15 minutes.
_USED_CODE_LOGIN_KEY = "members_password_after_code_used_at"


def password_after_code_login_at(*, request: HttpRequest) -> float | None:
    """When this session's recent, not yet used login by code happened (UNIX time), or None."""
    user = request.user
    if not user.is_authenticated:
        return None
    used_at = request.session.get(_USED_CODE_LOGIN_KEY, 0.0)
    # allauth stamps its records with time.time(); compare on the same clock.
    oldest = time.time() - PASSWORD_AFTER_CODE_WINDOW.total_seconds()
    times = [
        record["at"]
        for record in get_authentication_records(request, user)
        if record.get("method") == "code" and isinstance(record.get("at"), int | float)
    ]
    return max((at for at in times if at >= oldest and at > used_at), default=None)


@sensitive_post_parameters("new_password1", "new_password2")
@require_http_methods(["GET", "POST"])
def password_after_code(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        # Someone who is not logged in needs the code first; they come back here after it.
        return redirect_to_login(
            request.get_full_path(), login_url=reverse("account_request_login_code")
        )
    code_login_at = password_after_code_login_at(request=request)
    if code_login_at is None:
        # A page that says what to do instead, not a bare 403.
        return render(
            request,
            "account/password_after_code.html",
            {
                "form": None,
                "window_minutes": int(PASSWORD_AFTER_CODE_WINDOW.total_seconds() // 60),
            },
            status=403,
        )
    user = request.user
    if request.method == "POST":
        form = SetPasswordForm(user, request.POST)
        if form.is_valid():
            user_password_set_after_code(user=user, password=form.cleaned_data["new_password1"])
            # The new hash would log this session out too; keep the shopper logged in.
            update_session_auth_hash(request, user)
            request.session[_USED_CODE_LOGIN_KEY] = code_login_at
            messages.success(
                request,
                _("Your new password has been saved. Use it the next time you log in."),
            )
            return redirect("portal:profile")
    else:
        form = SetPasswordForm(user)
    return render(request, "account/password_after_code.html", {"form": form})


class ReferralSignupView(SignupView):
    def get_initial(self) -> dict:
        initial = super().get_initial()
        code = referral_code_clean(self.request.GET.get("ref", ""))
        if code:
            initial["referral_code"] = code[:20]
        return initial


signup = ReferralSignupView.as_view()
