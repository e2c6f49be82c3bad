"""Tier pages: the member's tier card and the ladder (portal), history and the manual tier
form (staff)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from members.models import Member
from members.permissions import staff_required
from members.selectors import member_get_for_staff
from members.views import member_required

from .forms import TierOverrideForm
from .selectors import member_tier_progress, tier_policy_get
from .services import TierError, tier_override_set


def portal_tier_panel(member: Member, request: HttpRequest) -> dict[str, Any]:
    return {"progress": member_tier_progress(member=member, now=timezone.now(), with_history=False)}


@require_GET
@member_required
def portal_tiers(request: HttpRequest, member: Member) -> HttpResponse:
    """The member's tier in full, and what every level gives and needs."""
    progress = member_tier_progress(member=member, now=timezone.now())
    return render(
        request,
        "tiers/portal/tiers.html",
        {"progress": progress, "policy": tier_policy_get()},
    )


def staff_tier_panel(member: Member, request: HttpRequest) -> dict[str, Any] | None:
    if not request.user.has_perm("tiers.view_tierhistory"):
        return None
    return {"progress": member_tier_progress(member=member, now=timezone.now())}


@require_http_methods(["GET", "POST"])
@staff_required("tiers.override_tier")
def tier_override_view(request: HttpRequest, member_no: str) -> HttpResponse:
    member = member_get_for_staff(member_no=member_no)
    if member is None:
        raise Http404(_("No member with this number."))
    status = 200
    if request.method == "POST":
        form = TierOverrideForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                tier_override_set(
                    member=member,
                    level=data["level"],
                    until=data["until"],
                    reason=data["reason"],
                    actor=request.user,
                )
            except TierError as error:
                form.add_error(None, str(error))
            else:
                messages.success(
                    request,
                    _("%(name)s is now %(level)s until %(until)s.")
                    % {
                        "name": member.name or member.member_no,
                        "level": data["level"].name,
                        "until": data["until"].isoformat(),
                    },
                )
                return redirect("staff:member-detail", member_no=member.member_no)
        status = 400
    else:
        form = TierOverrideForm()
    progress = member_tier_progress(member=member, now=timezone.now())
    return render(
        request,
        "tiers/staff/override.html",
        {"form": form, "member": member, "progress": progress},
        status=status,
    )
