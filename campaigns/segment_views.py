"""The segment pages in the back office: the list, the builder with its live preview, the
CSV export and the JSON count. Marketers and administrators build; auditors read."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.exports import csv_response
from members.permissions import staff_required
from members.services import audit_log

from .models import Campaign, Segment
from .segments import (
    SegmentRuleError,
    segment_archive,
    segment_count,
    segment_create,
    segment_funnel,
    segment_rules_validate,
    segment_sample,
    segment_update,
)
from .segments.fields import field_catalogue
from .segments.selectors import segment_export_rows

VIEW = "campaigns.view_segment"
MANAGE = "campaigns.manage_segment"
# The list's counts are read again after this long (or when the segment changes).
LIST_COUNT_SECONDS = 300
NEW_RULES = {"version": 1, "rule": {"group": "and", "rules": []}}


class SegmentForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    rules = forms.CharField(
        label=gettext_lazy("Rules (JSON)"),
        help_text=gettext_lazy(
            "The builder above writes this; without JavaScript, edit the JSON here."
        ),
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "rules-json"}),
    )

    def __init__(self, *args, segment_id: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.segment_id = segment_id

    def clean_rules(self) -> dict:
        return rules_parse(self.cleaned_data["rules"], segment_id=self.segment_id)


def rules_parse(text: str, *, segment_id: int | None = None) -> dict:
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise forms.ValidationError(_("The rules are not valid JSON.")) from error
    try:
        return segment_rules_validate(rules=raw, segment_id=segment_id)
    except SegmentRuleError as error:
        raise forms.ValidationError(error.detail, code=error.code) from error


def _builder_context(request: HttpRequest, form: SegmentForm, segment: Segment | None) -> dict:
    can_manage = request.user.has_perm(MANAGE)
    if not can_manage:
        # Read-only, not disabled: the preview posts the rules for a reader too.
        for field in form.fields.values():
            field.widget.attrs["readonly"] = True
    return {
        "form": form,
        "segment": segment,
        "can_manage": can_manage,
        "catalogue": field_catalogue(),
        "builder_text": {
            "and": _("All of (AND)"),
            "or": _("Any of (OR)"),
            "not": _("Not all of (NOT)"),
            "group": _("Group"),
            "field": _("Field"),
            "operator": _("Operator"),
            "value": _("Value"),
            "from": _("From"),
            "to": _("To"),
            "days": _("In the last N days"),
            "days_optional": _("In the last N days (empty: ever)"),
            "days_expiring": _("Within N days"),
            "add_condition": _("Add condition"),
            "add_group": _("Add group"),
            "remove": _("Remove"),
            "remove_group": _("Remove group"),
            "yes": _("Yes"),
            "no": _("No"),
            "this_month": _("This month"),
            "next_month": _("Next month"),
            "list_help": _("Separate values with commas."),
            "bad_json": _("The rules below are not valid JSON: fix them there."),
            "empty": _("No conditions yet: add one."),
        },
        "preview_url": reverse("staff:segment-preview"),
    }


def _campaign_counts() -> dict[int, int]:
    return dict(
        Campaign.objects.filter(segment__isnull=False)
        .values_list("segment")
        .annotate(n=Count("id"))
        .values_list("segment", "n")
    )


@require_GET
@staff_required(VIEW)
def segment_list_view(request: HttpRequest) -> HttpResponse:
    show_archived = request.GET.get("archived") == "1"
    segments = Segment.objects.filter(is_archived=show_archived).select_related("created_by")
    used = _campaign_counts()
    rows = [(segment, used.get(segment.pk, 0)) for segment in segments]
    return render(
        request,
        "campaigns/segments/list.html",
        {"rows": rows, "show_archived": show_archived, "can_manage": request.user.has_perm(MANAGE)},
    )


@require_GET
@staff_required(VIEW)
def segment_count_view(request: HttpRequest, pk: int) -> HttpResponse:
    """One row's count on the list, loaded after the page (htmx) and kept a few minutes."""
    segment = get_object_or_404(Segment, pk=pk)
    key = f"segment-count:{segment.pk}:{segment.updated_at.timestamp()}"
    count = cache.get(key)
    error = ""
    if count is None:
        try:
            count = segment_count(rules=segment.rules, at=timezone.now())
            cache.set(key, count, LIST_COUNT_SECONDS)
        except SegmentRuleError as problem:
            error = problem.detail
    return render(request, "campaigns/segments/_count.html", {"count": count, "error": error})


@require_http_methods(["GET", "POST"])
@staff_required(MANAGE)
def segment_new_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = SegmentForm(request.POST)
        if form.is_valid():
            segment = _saved(form, lambda data: segment_create(actor=request.user, **data))
            if segment is not None:
                return redirect("staff:segment-detail", pk=segment.pk)
    else:
        form = SegmentForm(initial={"rules": json.dumps(NEW_RULES, ensure_ascii=False)})
    status = 400 if form.is_bound else 200
    return render(
        request,
        "campaigns/segments/builder.html",
        _builder_context(request, form, None),
        status=status,
    )


def _saved(form: SegmentForm, save) -> Segment | None:
    data = form.cleaned_data
    try:
        return save(
            {"name": data["name"], "description": data["description"], "rules": data["rules"]}
        )
    except SegmentRuleError as error:
        form.add_error("name" if error.code == "bad_name" else "rules", error.detail)
        return None


@require_http_methods(["GET", "POST"])
@staff_required(VIEW)
def segment_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=pk)
    if request.method == "POST":
        if not request.user.has_perm(MANAGE):
            raise PermissionDenied
        form = SegmentForm(request.POST, segment_id=segment.pk)
        if form.is_valid():
            saved = _saved(
                form, lambda data: segment_update(segment=segment, actor=request.user, **data)
            )
            if saved is not None:
                return redirect("staff:segment-detail", pk=segment.pk)
        return render(
            request,
            "campaigns/segments/builder.html",
            _builder_context(request, form, segment),
            status=400,
        )
    form = SegmentForm(
        initial={
            "name": segment.name,
            "description": segment.description,
            "rules": json.dumps(segment.rules, ensure_ascii=False, indent=1),
        },
        segment_id=segment.pk,
    )
    return render(
        request, "campaigns/segments/builder.html", _builder_context(request, form, segment)
    )


@require_POST
@staff_required(MANAGE)
def segment_archive_view(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=pk)
    segment_archive(segment=segment, actor=request.user)
    return redirect("staff:segments")


def _preview(*, rules: dict) -> dict[str, Any]:
    at = timezone.now()
    return {
        "funnel": segment_funnel(rules=rules, at=at),
        "sample": segment_sample(rules=rules, at=at),
    }


@require_POST
@staff_required(VIEW)
def segment_preview_view(request: HttpRequest) -> HttpResponse:
    """The live part of the builder: count, funnel and sample for the rules in the form, or
    the problem with them. htmx swaps the fragment in; without JavaScript the page comes
    back whole with it."""
    raw_id = request.POST.get("segment_id", "")
    segment_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() else None
    context: dict[str, Any] = {"error": ""}
    try:
        context.update(
            _preview(rules=rules_parse(request.POST.get("rules", ""), segment_id=segment_id))
        )
    except forms.ValidationError as error:
        context["error"] = " ".join(error.messages)
    except SegmentRuleError as error:
        context["error"] = error.detail
    if request.htmx:
        return render(request, "campaigns/segments/_preview.html", context)
    segment = Segment.objects.filter(pk=segment_id).first() if segment_id else None
    form = SegmentForm(request.POST, segment_id=segment_id)
    page = _builder_context(request, form, segment)
    page["preview"] = context
    return render(request, "campaigns/segments/builder.html", page)


def export_headers() -> list[str]:
    return [
        _("Member number"),
        _("Name"),
        _("Mobile phone"),
        _("Tier"),
        _("Lifecycle stage"),
        _("RFM cell"),
        _("Churn risk"),
        _("Last purchase"),
    ]


@require_GET
@staff_required(VIEW)
def segment_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=pk)
    at = timezone.now()
    try:
        segment_rules_validate(rules=segment.rules, segment_id=segment.pk)
    except SegmentRuleError as error:
        return HttpResponse(error.detail, status=400, content_type="text/plain; charset=utf-8")
    audit_log(
        actor=request.user,
        action="segment.export",
        target=segment,
        details={"rules": segment.rules, "at": at.isoformat()},
    )
    rows = (
        [
            row.member_no,
            row.name,
            row.phone_masked,
            row.tier,
            row.stage,
            row.rfm_cell,
            row.churn_band,
            timezone.localtime(row.last_purchase_at).date() if row.last_purchase_at else None,
        ]
        for row in segment_export_rows(rules=segment.rules, at=at)
    )
    return csv_response(
        filename=f"segment-{segment.pk}-{timezone.localdate(at):%Y%m%d}.csv",
        header=export_headers(),
        rows=rows,
    )


def _error(code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=400)


@require_POST
@staff_required(VIEW)
def segment_count_json_view(request: HttpRequest) -> JsonResponse:
    """POST {"rules": …} (optionally "holdout_percent", "channels") → the count and the
    funnel, or 400 {"error", "detail"}."""
    try:
        body = json.loads(request.body)
    except ValueError:
        return _error("bad_json", _("The request body is not valid JSON."))
    if not isinstance(body, dict) or "rules" not in body:
        return _error("bad_rules", _("Send a JSON object with the rules under “rules”."))
    try:
        holdout = Decimal(str(body.get("holdout_percent", 10)))
    except InvalidOperation:
        holdout = Decimal(-1)
    if not holdout.is_finite() or not 0 <= holdout <= 50:
        return _error("bad_holdout", _("The holdout is a percentage from 0 to 50."))
    channels = body.get("channels", ["sms", "email", "portal"])
    if (
        not isinstance(channels, list)
        or not all(isinstance(channel, str) for channel in channels)
        or not set(channels) <= {"sms", "email", "portal"}
    ):
        return _error("bad_channels", _("Channels are a list of sms, email and portal."))
    try:
        rules = segment_rules_validate(rules=body["rules"])
        funnel = segment_funnel(
            rules=rules, at=timezone.now(), holdout_percent=holdout, channels=channels
        )
    except SegmentRuleError as error:
        return _error(error.code, error.detail)
    return JsonResponse({"count": funnel.matching, "funnel": dataclasses.asdict(funnel)})
