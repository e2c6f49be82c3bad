"""Back-office views for members: the till's search, the member 360 page, enrolment, audit log.

Each view checks one permission of the roles in migrations/0002_roles.py. htmx requests get
only the fragment that changes (django-template-partials); every page works without it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from core.exports import csv_cell
from core.panels import staff_member_panels_render

# The search and reveal views share their names with the selector and service they call.
from . import selectors, services
from .cards import member_no_grouped, member_qr_svg
from .models import AuditEntry, Member, Store
from .numbers import phone_national
from .permissions import staff_required
from .selectors import (
    audit_action_label,
    audit_actor_label,
    audit_details,
    audit_entry_list,
    audit_target_label,
    member_audit_trail,
    member_consent_history,
    member_get_for_staff,
    member_summary,
    staff_stores,
)
from .services import InvalidMemberData, MemberAlreadyExists, StoreNotYours, member_enroll
from .staff_forms import ENROL_ERRORS, AuditFilterForm, MemberEnrolForm, no_store_message

AUDIT_PAGE_SIZE = 50
AUDIT_CSV_BATCH = 2000
# The store last chosen on the enrolment form: a till enrols at the same store all day.
ENROL_STORE_SESSION_KEY = "staff_enrol_store"


def _is_fragment_request(request: HttpRequest) -> bool:
    # A history restore (back button after hx-push-url) needs the whole page, not a fragment.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render(
    request: HttpRequest, template: str, fragment: str, context: dict, status: int = 200
) -> HttpResponse:
    """Render the page, or only its `fragment` partial for htmx."""
    name = f"{template}#{fragment}" if _is_fragment_request(request) else template
    response = render(request, name, context, status=status)
    # The same URL answers with a fragment or a page: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


def _member_or_404(member_no: str) -> Member:
    member = member_get_for_staff(member_no=member_no)
    if member is None:
        raise Http404(_("No member with this number."))
    return member


@require_GET
@staff_required()
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "staff/home.html",
        {"q": "", "no_store_message": no_store_message(user=request.user)},
    )


# Beyond any real list: the selector shows the last page instead.
_PAGE_MAX = 999_999_999


def _page_number(value: str) -> int:
    """A page number as typed in the URL: ASCII digits only (`str.isdigit` also takes "²"),
    a number too long for a page is past the end (the last page), anything else page 1."""
    if re.fullmatch(r"[0-9]{1,9}", value):
        return int(value)
    if re.fullmatch(r"[0-9]+", value):
        return _PAGE_MAX
    return 1


@require_GET
@staff_required("members.view_member")
def member_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    page = _page_number(request.GET.get("page", ""))
    result = selectors.member_search(query=query, page=page)
    # A phone, a number or a scanned card names one person: the cashier wants that member's
    # page, not a list of one. A name search always lists, even a single hit.
    if result.kind in ("phone", "member_no") and len(result.members) == 1:
        url = reverse("staff:member-detail", args=[result.members[0].member_no])
        if request.htmx:
            return HttpResponseClientRedirect(url)
        return redirect(url)
    context = {"q": query, "result": result}
    return _render(request, "staff/member_search.html", "results", context)


def _with_action_labels(entries: Iterable[AuditEntry]) -> list[AuditEntry]:
    entries = list(entries)
    for entry in entries:
        entry.action_label = audit_action_label(entry.action)
        entry.actor_display = audit_actor_label(entry.actor_label)
        entry.target_label = audit_target_label(entry.target_type)
        entry.detail_rows = audit_details(entry)
    return entries


def _detail_context(member: Member, *, phone_revealed: str | None = None) -> dict:
    card_title = _("Member card %(number)s") % {"number": member.member_no}
    return {
        "member": member,
        "member_no_grouped": member_no_grouped(member.member_no),
        "qr_svg": member_qr_svg(member_no=member.member_no, title=card_title),
        "summary": member_summary(member=member),
        "consent_history": member_consent_history(member=member),
        "audit_trail": _with_action_labels(member_audit_trail(member=member)),
        "phone_revealed": phone_national(phone_revealed) if phone_revealed else phone_revealed,
    }


@require_GET
@staff_required("members.view_member")
def member_detail(request: HttpRequest, member_no: str) -> HttpResponse:
    member = _member_or_404(member_no)
    context = _detail_context(member)
    # Points, tiers and campaigns add their sections here (members cannot import them).
    context["panels"] = staff_member_panels_render(member=member, request=request)
    return render(request, "staff/member_detail.html", context)


@require_POST
@staff_required("members.reveal_phone")
def member_reveal_phone(request: HttpRequest, member_no: str) -> HttpResponse:
    member = _member_or_404(member_no)
    phone = services.member_reveal_phone(member=member, actor=request.user)
    context = _detail_context(member, phone_revealed=phone)
    return _render(request, "staff/member_detail.html", "phone", context)


def _enrol_initial_store(request: HttpRequest) -> Store | None:
    """The store chosen last time on this session if still one of the user's, else the
    first of the user's stores."""
    stores = staff_stores(user=request.user)
    remembered = request.session.get(ENROL_STORE_SESSION_KEY)
    store = stores.filter(pk=remembered).first() if remembered else None
    return store or stores.first()


@require_http_methods(["GET", "POST"])
@staff_required("members.add_member")
def member_enrol(request: HttpRequest) -> HttpResponse:
    existing: Member | None = None
    existing_field = ""
    status = 200
    if request.method == "POST":
        form = MemberEnrolForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                member = member_enroll(
                    phone=data["phone"],
                    name=data["name"],
                    email=data["email"] or None,
                    gender=data["gender"],
                    birthday=data["birthday"],
                    channel=Member.Channel.STORE,
                    store=data["store"],
                    consents=form.consents(),
                    actor=request.user,
                    welcome_sms=True,
                )
            except MemberAlreadyExists as error:
                # Also what a double-clicked submit lands on: the first click enrolled them.
                existing, existing_field = error.member, error.field
                if error.field == "email":
                    form.add_error("email", _("This e-mail already belongs to a member."))
                else:
                    form.add_error("phone", _("This phone number is already a member."))
            except StoreNotYours as error:
                form.add_error("store", str(error))
            except InvalidMemberData as error:
                for field, code in error.errors.items():
                    form.add_error(
                        field if field in form.fields else None, ENROL_ERRORS.get(code, code)
                    )
            else:
                request.session[ENROL_STORE_SESSION_KEY] = data["store"].pk
                messages.success(
                    request,
                    _("%(name)s is now a member. Member number: %(number)s")
                    % {"name": member.name, "number": member_no_grouped(member.member_no)},
                )
                return redirect("staff:member-detail", member_no=member.member_no)
        status = 400
    else:
        form = MemberEnrolForm(
            initial={
                "phone": request.GET.get("phone", "").strip(),
                "store": _enrol_initial_store(request),
            },
            user=request.user,
        )
    context = {
        "form": form,
        "existing": existing,
        "existing_field": existing_field,
        "privacy_version": settings.PRIVACY_NOTICE_VERSION,
        "no_store_message": no_store_message(user=request.user),
    }
    return render(request, "staff/member_enrol.html", context, status=status)


def _audit_entries(form: AuditFilterForm) -> QuerySet[AuditEntry]:
    filters = form.cleaned_data if form.is_bound else {}
    return audit_entry_list(
        action=filters.get("action", ""),
        actor=filters.get("actor", ""),
        member_no=filters.get("member_no", ""),
        since=filters.get("since"),
        until=filters.get("until"),
    )


@require_GET
@staff_required("members.view_auditentry")
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    page = None
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        page = Paginator(_audit_entries(form), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
        page.object_list = _with_action_labels(page.object_list)
    # The filters without the page number, for the pager's links.
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "filter_query": query.urlencode()}
    return render(request, "staff/audit_log.html", context, status=status)


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _audit_csv_row(writer: Any, entry: AuditEntry) -> str:
    _with_action_labels([entry])
    target = f"{entry.target_label} {entry.target_id}" if entry.target_type else ""
    details = "; ".join(f"{row.label}: {row.value}" for row in entry.detail_rows)
    return writer.writerow(
        [
            csv_cell(value)
            for value in (
                timezone.localtime(entry.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                entry.actor_display,
                entry.action_label,
                target,
                entry.member.member_no if entry.member else "",
                details,
            )
        ]
    )


@require_GET
@staff_required("members.view_auditentry")
def audit_log_csv(request: HttpRequest) -> HttpResponse:
    """The filtered log as CSV (UTF-8 with a BOM, so Excel reads the Chinese right)."""
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return audit_log(request)
    entries = _audit_entries(form)
    writer = csv.writer(_Echo())
    header = [_("Time"), _("Actor"), _("Action"), _("Target"), _("Member"), _("Details")]

    language = translation.get_language()

    def rows() -> Iterator[str]:
        yield "\ufeff"
        yield writer.writerow(header)
        # The rows are written while the response streams, after the view has returned.
        with translation.override(language):
            yield from (
                _audit_csv_row(writer, entry) for entry in entries.iterator(AUDIT_CSV_BATCH)
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-log-{timezone.localdate().isoformat()}.csv"'
    )
    return response
