"""Member portal views (phone-sized first).

Every page is about "me": no URL carries a member id, the member always comes from the
logged-in user, so one member can never address another's data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from core.panels import portal_panels_render

from .account_views import password_after_code_login_at
from .cards import member_barcode_svg, member_no_grouped, member_qr_svg, qr_svg
from .forms import AccountCloseForm, ConsentForm, ProfileForm
from .models import ConsentEvent, Member, User
from .selectors import (
    member_consent_history,
    member_export,
    member_get_for_summary,
    member_referral_count,
    member_summary,
)
from .services import InvalidMemberData, member_close, member_set_consent, member_update_profile

MemberView = Callable[..., HttpResponse]

PROFILE_ERRORS = {
    "email_taken": gettext_lazy("This e-mail is already used by another member."),
}


def _member_of(user: User) -> Member | None:
    # With their tier and points, which most portal pages show: one query.
    member = member_get_for_summary(user_id=user.pk)
    if member is None or not member.is_open:
        return None
    member.user = user  # as `user.member` would have it, without reading the login again
    return member


def member_required(view: MemberView) -> MemberView:
    """Log-in required; a login without a member (a staff account, say) gets a friendly page."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        member = _member_of(request.user)
        if member is None:
            return render(request, "portal/no_member.html")
        return view(request, member, *args, **kwargs)

    return wrapped


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "portal/welcome.html")
    member = _member_of(request.user)
    if member is None:
        return render(request, "portal/no_member.html")
    card_title = _("Member card %(number)s") % {"number": member.member_no}
    return render(
        request,
        "portal/home.html",
        {
            "member": member,
            # Tier and points come from the apps that own them (placeholders until then).
            "summary": member_summary(member=member),
            "member_no_grouped": member_no_grouped(member.member_no),
            "qr_svg": member_qr_svg(member_no=member.member_no, title=card_title),
            "barcode_svg": member_barcode_svg(member_no=member.member_no, title=card_title),
            # Points (balance, expiring soon) and later apps add their panels here.
            "panels": portal_panels_render(member=member, request=request),
        },
    )


@require_GET
@member_required
def referral(request: HttpRequest, member: Member) -> HttpResponse:
    """The member's referral code, their sign-up link and its QR code, to share with friends."""
    link = request.build_absolute_uri(f"{reverse('account_signup')}?ref={member.referral_code}")
    return render(
        request,
        "portal/referral.html",
        {
            "member": member,
            "link": link,
            "qr_svg": qr_svg(
                payload=link,
                title=_("Sign-up link with referral code %(code)s")
                % {"code": member.referral_code},
            ),
            "referred": member_referral_count(member=member),
        },
    )


@require_http_methods(["GET", "POST"])
@member_required
def profile(request: HttpRequest, member: Member) -> HttpResponse:
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                member_update_profile(member=member, actor=request.user, **form.cleaned_data)
            except InvalidMemberData as error:
                for field, code in error.errors.items():
                    form.add_error(
                        field if field in form.fields else None, PROFILE_ERRORS.get(code, code)
                    )
            else:
                messages.success(request, _("Your profile has been saved."))
                return redirect("portal:profile")
    else:
        form = ProfileForm(initial=ProfileForm.initial_for(member))
    return render(
        request,
        "portal/profile.html",
        {
            "member": member,
            "form": form,
            # Right after a login by SMS code the old password is not needed to set a new one.
            "password_after_code": password_after_code_login_at(request=request) is not None,
        },
    )


@require_http_methods(["GET", "POST"])
@member_required
def consent(request: HttpRequest, member: Member) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = ConsentForm(request.POST)
        if form.is_valid():
            member = member_set_consent(
                member=member,
                kind=form.cleaned_data["kind"],
                granted=form.cleaned_data["granted"],
                source=ConsentEvent.Source.PORTAL,
                actor=request.user,
            )
            if not request.htmx:
                messages.success(request, _("Your choice has been saved."))
                return redirect("portal:consent")
        else:
            messages.error(request, _("That choice was not understood; nothing was changed."))
            status = 400
    context = {
        "member": member,
        "channels": [
            {
                "kind": ConsentEvent.Kind.SMS,
                "label": ConsentEvent.Kind.SMS.label,
                "granted": member.consent_sms,
            },
            {
                "kind": ConsentEvent.Kind.EMAIL,
                "label": ConsentEvent.Kind.EMAIL.label,
                "granted": member.consent_email,
            },
        ],
        "history": member_consent_history(member=member),
    }
    template = "portal/consent.html#consent-panel" if request.htmx else "portal/consent.html"
    return render(request, template, context, status=status)


@require_GET
def privacy_notice(request: HttpRequest) -> HttpResponse:
    return render(
        request, "portal/privacy_notice.html", {"version": settings.PRIVACY_NOTICE_VERSION}
    )


@require_GET
@member_required
def data_export(request: HttpRequest, member: Member) -> HttpResponse:
    data = {
        "exported_at": timezone.now().isoformat(),
        "member": member_export(member=member),
    }
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, indent=2),
        content_type="application/json; charset=utf-8",
    )
    filename = f"member-{member.member_no}-{timezone.localdate():%Y%m%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@member_required
def account_close(request: HttpRequest, member: Member) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = AccountCloseForm(request.POST, user=user)
        if form.is_valid():
            member_close(member=member, actor=user)
            logout(request)
            messages.success(
                request,
                _(
                    "Your account has been closed and your personal data removed. "
                    "Thank you for having been a member."
                ),
            )
            return redirect("portal:home")
    else:
        form = AccountCloseForm(user=user)
    return render(request, "portal/account_close.html", {"member": member, "form": form})
