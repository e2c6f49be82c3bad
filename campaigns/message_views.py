"""The member's side of the outbox: the unsubscribe link of marketing e-mails and the
in-portal notices (listed on their page; the home panel is registered by `messages`)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from members.models import Member
from members.views import member_required

from .messages import (
    InvalidUnsubscribeToken,
    email_unsubscribe,
    member_notice_get,
    member_notice_read,
    member_notices,
    member_notices_read_all,
    unsubscribe_member,
)


@require_GET
@member_required
def notices(request: HttpRequest, member: Member) -> HttpResponse:
    """Every notice, the unread ones marked as new; opening the page reads them all."""
    listed = member_notices(member=member)
    response = render(request, "campaigns/messages/notices.html", {"notices": listed})
    member_notices_read_all(member=member, now=timezone.now())
    return response


@require_GET
@member_required
def notice_detail(request: HttpRequest, member: Member, message_id: int) -> HttpResponse:
    notice = member_notice_get(member=member, message_id=message_id)
    if notice is None:
        raise Http404(_("No such notice."))
    member_notice_read(member=member, message_id=message_id, now=timezone.now())
    return render(request, "campaigns/messages/notice_detail.html", {"notice": notice})


# The link comes from a mail client: no session, and RFC 8058's one-click POST carries no
# CSRF token. The signed token is what proves the request; all it can do is switch e-mail
# offers off.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if request.method == "POST":
            member = email_unsubscribe(token=token)
            return render(request, "campaigns/messages/unsubscribed.html", {"member": member})
        member = unsubscribe_member(token=token)
    except InvalidUnsubscribeToken:
        return render(request, "campaigns/messages/unsubscribe_invalid.html", status=400)
    return render(
        request,
        "campaigns/messages/unsubscribe.html",
        {"token": token, "already": not member.consent_email},
    )
