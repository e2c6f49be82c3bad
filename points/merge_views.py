"""Back office: likely duplicate members, and the administrator's merge of two of them.

The merge lives in points because it moves points, purchases and coupons (members cannot
import points); these views only show the candidates, confirm, and call `member_merge`.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from members.models import Member
from members.permissions import staff_required
from members.selectors import member_duplicate_groups, member_get_by_number

from .selectors import points_balance
from .services import MergeRefused, member_merge


@staff_required("members.view_member")
def duplicates_view(request: HttpRequest) -> HttpResponse:
    return render(request, "points/staff/duplicates.html", {"groups": member_duplicate_groups()})


def _merge_side(member: Member) -> dict:
    return {
        "member": member,
        "balance": points_balance(member=member),
        "purchases": member.purchases.count(),
        "coupons": member.coupons.count(),
    }


@staff_required("members.view_member", "members.merge_members")
@require_http_methods(["GET", "POST"])
def member_merge_view(request: HttpRequest) -> HttpResponse:
    """Confirm, then merge `source` (the duplicate, closed afterwards) into `target` (kept)."""
    data = request.POST if request.method == "POST" else request.GET
    source = member_get_by_number(member_no=data.get("source", ""))
    target = member_get_by_number(member_no=data.get("target", ""))
    if source is None or target is None:
        raise Http404
    if request.method == "POST":
        try:
            member_merge(source=source, target=target, actor=request.user)
        except MergeRefused as error:
            messages.error(
                request, _("The members were not merged: %(reason)s") % {"reason": error}
            )
        else:
            messages.success(
                request,
                _("%(source)s was merged into %(target)s; points, purchases and coupons moved.")
                % {"source": source.member_no, "target": target.member_no},
            )
            return redirect("staff:member-detail", member_no=target.member_no)
    return render(
        request,
        "points/staff/member_merge.html",
        {"source": _merge_side(source), "target": _merge_side(target)},
    )
