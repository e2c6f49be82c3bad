"""The marketer's campaign pages: the list, a form per kind, the campaign page (before launch:
the audience after each filter, the cost and the smallest uplift the holdout can detect;
after: the messages and the results), the launch confirmation, approval and cancellation,
and the win-back campaign started from the analytics early-warning alert.

Views parse and render; the lifecycle is campaigns/services.py, the reads selectors.py.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from members.models import Store
from members.permissions import staff_required
from tiers.models import TierLevel

from .forms import (
    CampaignFilterForm,
    CampaignForm,
    LaunchForm,
    WinBackForm,
)
from .messages import campaign_message_counts, message_template_fields
from .models import Campaign, OutboxMessage
from .result_views import campaign_results_context
from .segments import SegmentRuleError, segment_count
from .selectors import (
    MANAGE_PERMISSION,
    RESULTS_PERMISSION,
    VIEW_PERMISSION,
    campaign_get,
    campaign_list,
    campaign_preview,
    campaign_reader_sees_all,
)
from .services import (
    CANCELLABLE,
    CampaignError,
    CampaignInvalid,
    campaign_approve,
    campaign_cancel,
    campaign_create,
    campaign_schedule,
    campaign_update,
    campaign_winback_create,
    carries_message,
    may_approve,
    winback_rules,
)

LIST_PAGE_SIZE = 50


def _may_read(user: Any) -> bool:
    return user.has_perm(VIEW_PERMISSION) or user.has_perm(RESULTS_PERMISSION)


def _campaign_or_404(request: HttpRequest, campaign_id: int) -> Campaign:
    campaign = campaign_get(user=request.user, campaign_id=campaign_id)
    if campaign is None:
        raise Http404(_("No such campaign."))
    return campaign


def _errors_to_form(form: Any, error: CampaignInvalid) -> None:
    """Each refusal on its field when the form shows that field, else above the form."""
    for field, field_messages in error.errors.items():
        target = field if field in form.fields else None
        for message in field_messages:
            form.add_error(target, message)


# --- List ----------------------------------------------------------------------------------


@require_GET
@staff_required()
def campaign_list_view(request: HttpRequest) -> HttpResponse:
    if not _may_read(request.user):
        raise PermissionDenied
    form = CampaignFilterForm(request.GET or None)
    status = form.cleaned_data["status"] if form.is_bound and form.is_valid() else ""
    page = Paginator(campaign_list(user=request.user, status=status), LIST_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "filter_query": query.urlencode(),
        "kinds": Campaign.Kind.choices,
        "results_only": not campaign_reader_sees_all(user=request.user),
    }
    return render(request, "campaigns/campaigns/list.html", context)


# --- New and edit --------------------------------------------------------------------------


def _form_page(
    request: HttpRequest, *, form: CampaignForm, campaign: Campaign | None, status: int = 200
) -> HttpResponse:
    context = {
        "form": form,
        "campaign": campaign,
        "kind_label": Campaign.Kind(form.kind).label,
        "groups": form.field_groups(),
        "placeholders": message_template_fields(),
    }
    return render(request, "campaigns/campaigns/form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@staff_required(MANAGE_PERMISSION)
def campaign_new_view(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    if kind not in Campaign.Kind.values:
        context = {"kinds": Campaign.Kind.choices}
        status = 400 if kind else 200
        return render(request, "campaigns/campaigns/new.html", context, status=status)
    if request.method == "POST":
        form = CampaignForm(request.POST, kind=kind)
        if form.is_valid():
            try:
                campaign = campaign_create(actor=request.user, kind=kind, **form.campaign_fields())
            except CampaignInvalid as error:
                _errors_to_form(form, error)
            else:
                messages.success(request, _("Draft saved."))
                return redirect("staff:campaign-detail", campaign_id=campaign.pk)
        return _form_page(request, form=form, campaign=None, status=400)
    initial = {}
    if request.GET.get("segment", "").isdigit():
        initial["segment"] = int(request.GET["segment"])
    return _form_page(request, form=CampaignForm(kind=kind, initial=initial), campaign=None)


@require_http_methods(["GET", "POST"])
@staff_required(MANAGE_PERMISSION)
def campaign_edit_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_or_404(request, campaign_id)
    if campaign.status != Campaign.Status.DRAFT:
        messages.error(request, _("Only a draft can be changed."))
        return redirect("staff:campaign-detail", campaign_id=campaign.pk)
    if request.method == "POST":
        form = CampaignForm(request.POST, kind=campaign.kind)
        if form.is_valid():
            try:
                campaign_update(campaign=campaign, actor=request.user, **form.campaign_fields())
            except CampaignInvalid as error:
                _errors_to_form(form, error)
            except CampaignError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, _("Draft saved."))
                return redirect("staff:campaign-detail", campaign_id=campaign.pk)
        return _form_page(request, form=form, campaign=campaign, status=400)
    form = CampaignForm(kind=campaign.kind, initial=CampaignForm.initial_from(campaign))
    return _form_page(request, form=form, campaign=campaign)


# --- The campaign page ---------------------------------------------------------------------


def _actions(request: HttpRequest, campaign: Campaign) -> dict[str, bool]:
    user = request.user
    manage = user.has_perm(MANAGE_PERMISSION)
    draft = campaign.status == Campaign.Status.DRAFT
    waiting = draft and campaign.approval_required
    return {
        "can_edit": manage and draft,
        "can_launch": manage and draft and not waiting,
        "waiting": waiting,
        "can_approve": waiting and may_approve(campaign=campaign, user=user),
        "can_cancel": manage and campaign.status in CANCELLABLE,
    }


def _settings_rows(campaign: Campaign) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        (_("Kind"), campaign.get_kind_display()),
        (_("Segment"), campaign.segment.name if campaign.segment_id else "—"),
    ]
    if campaign.kind == Campaign.Kind.BONUS:
        rows.append((_("Bonus points per member"), campaign.bonus_points))
    if campaign.kind == Campaign.Kind.MULTIPLIER:
        rows += [
            (_("Multiplier"), f"×{campaign.multiplier}"),
            (_("Promotion starts"), timezone.localtime(campaign.starts_at)),
            (_("Promotion ends"), timezone.localtime(campaign.ends_at)),
            (_("Tiers"), ", ".join(campaign.tiers) or _("All")),
            (_("Stores"), ", ".join(s.name for s in campaign.stores.all()) or _("All")),
            (_("Categories"), ", ".join(campaign.categories) or _("All")),
        ]
    if campaign.kind == Campaign.Kind.COUPON and campaign.reward_id:
        rows.append((_("Reward"), f"{campaign.reward.code}"))
    channels = [
        label
        for on, label in (
            (campaign.send_sms, _("SMS")),
            (campaign.send_email, _("E-mail")),
            (campaign.send_portal, _("In-portal notice")),
        )
        if on
    ]
    rows += [
        (_("Message channels"), ", ".join(channels) or _("No message")),
        (_("Holdout %"), f"{campaign.holdout_percent}%"),
        (_("Conversion window (days)"), campaign.conversion_window_days),
        (_("Revenue cap percentile"), campaign.revenue_cap_percentile),
    ]
    return rows


def _preview_context(campaign: Campaign) -> dict[str, Any]:
    """Before launch: the audience after each filter, the cost and the detectable uplift."""
    if campaign.launched_at is not None or campaign.status not in (
        Campaign.Status.DRAFT,
        Campaign.Status.SCHEDULED,
    ):
        return {}
    try:
        preview = campaign_preview(campaign=campaign, now=timezone.now())
    except SegmentRuleError as error:
        # A segment it refers to was archived or changed since: say so, do not fail.
        return {"preview_error": error.detail}
    return {
        "preview": preview,
        "carries_message": carries_message(campaign),
        "point_value": settings.ANALYTICS_POINT_VALUE,
        "approval_limit": settings.CAMPAIGN_APPROVAL_COST,
        "baseline_rate": _percent(preview.baseline_rate),
        "minimum_uplift": _points(preview.minimum_uplift),
    }


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _points(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}"


def _after_launch_context(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    """After launch: the outbox per channel and status, and the results against the holdout
    (store staff and managers: their stores' members only, decided by the results)."""
    if campaign.launched_at is None:
        return {}
    context = campaign_results_context(campaign=campaign, user=request.user)
    if campaign_reader_sees_all(user=request.user):
        context["message_counts"] = _message_rows(campaign_message_counts(campaign=campaign))
    return context


def _message_rows(counts: dict[str, dict[str, int]]) -> list[tuple[str, list[tuple[str, int]]]]:
    """(channel label, [(status label, count)]) for the channels the campaign used."""
    channels = dict(OutboxMessage.Channel.choices)
    statuses = dict(OutboxMessage.Status.choices)
    return [
        (channels.get(channel, channel), [(statuses.get(s, s), n) for s, n in by_status.items()])
        for channel, by_status in counts.items()
    ]


@require_GET
@staff_required()
def campaign_detail_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    if not _may_read(request.user):
        raise PermissionDenied
    campaign = _campaign_or_404(request, campaign_id)
    context: dict[str, Any] = {
        "campaign": campaign,
        "results_only": not campaign_reader_sees_all(user=request.user),
        "settings_rows": _settings_rows(campaign),
        **_actions(request, campaign),
    }
    if not context["results_only"]:
        context.update(_preview_context(campaign))
    context.update(_after_launch_context(request, campaign))
    return render(request, "campaigns/campaigns/detail.html", context)


# --- Launch, approve, cancel ---------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_required(MANAGE_PERMISSION)
def campaign_launch_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The confirmation step: what will happen (audience, cost) and when; the launch itself
    only on the confirmed submit."""
    campaign = _campaign_or_404(request, campaign_id)
    if campaign.status != Campaign.Status.DRAFT or campaign.approval_required:
        messages.error(request, _("This campaign cannot be launched now."))
        return redirect("staff:campaign-detail", campaign_id=campaign.pk)
    status = 200
    form = LaunchForm(request.POST or None)
    if request.method == "POST":
        status = 400
        if form.is_valid():
            now = timezone.now()
            try:
                campaign = campaign_schedule(
                    campaign=campaign, actor=request.user, at=form.launch_at(), now=now
                )
            except CampaignInvalid as error:
                for field, field_messages in error.errors.items():
                    for message in field_messages:
                        form.add_error("at" if field == "scheduled_at" else None, message)
            except CampaignError as error:
                form.add_error(None, str(error))
            else:
                if campaign.status == Campaign.Status.DRAFT:
                    messages.info(
                        request,
                        _(
                            "The cost of this campaign needs an administrator's approval: it "
                            "waits for approval and launches once approved."
                        ),
                    )
                else:
                    messages.success(request, _("Campaign scheduled."))
                return redirect("staff:campaign-detail", campaign_id=campaign.pk)
    context = {
        "campaign": campaign,
        "form": form,
        "settings_rows": _settings_rows(campaign),
        **_preview_context(campaign),
    }
    return render(request, "campaigns/campaigns/launch.html", context, status=status)


@require_POST
@staff_required()
def campaign_approve_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_or_404(request, campaign_id)
    try:
        campaign_approve(campaign=campaign, actor=request.user, now=timezone.now())
    except CampaignInvalid as error:
        for field_messages in error.errors.values():
            for message in field_messages:
                messages.error(request, message)
    except CampaignError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Campaign approved and scheduled."))
    return redirect("staff:campaign-detail", campaign_id=campaign.pk)


@require_POST
@staff_required(MANAGE_PERMISSION)
def campaign_cancel_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_or_404(request, campaign_id)
    try:
        campaign_cancel(campaign=campaign, actor=request.user, now=timezone.now())
    except CampaignError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Campaign cancelled."))
    return redirect("staff:campaign-detail", campaign_id=campaign.pk)


# --- Win-back from the analytics early-warning alert ---------------------------------------


def _winback_scope(data: Any) -> tuple[Store | None, TierLevel | None]:
    """The alert's filters (0 or none: all); an unknown store or tier is a bad link."""
    form = WinBackForm(data)
    if not form.is_valid():
        raise Http404(_("This link is not valid."))
    store = tier = None
    if form.cleaned_data["store"]:
        store = Store.objects.filter(pk=form.cleaned_data["store"]).first()
        if store is None:
            raise Http404(_("No such store."))
    if form.cleaned_data["tier"]:
        tier = TierLevel.objects.filter(pk=form.cleaned_data["tier"]).first()
        if tier is None:
            raise Http404(_("No such tier."))
    return store, tier


@require_http_methods(["GET", "POST"])
@staff_required(MANAGE_PERMISSION)
def campaign_winback_view(request: HttpRequest) -> HttpResponse:
    """GET: how many members the alert's segment holds, and a button; POST: make the
    segment and a draft on it, and open the draft."""
    data = request.POST if request.method == "POST" else request.GET
    store, tier = _winback_scope(data)
    now = timezone.now()
    if request.method == "POST":
        try:
            campaign = campaign_winback_create(actor=request.user, store=store, tier=tier, now=now)
        except SegmentRuleError as error:
            messages.error(request, error.detail)
        else:
            messages.success(
                request,
                _(
                    "A segment of the members at high risk and a draft on it are ready: write the "
                    "message, or change what they get, then launch."
                ),
            )
            return redirect("staff:campaign-edit", campaign_id=campaign.pk)
    count = segment_count(rules=winback_rules(store=store, tier=tier), at=now)
    context = {"store": store, "tier": tier, "count": count, "form": WinBackForm(data)}
    return render(request, "campaigns/campaigns/winback.html", context)
