"""The analytics dashboards in the back office, and the figures panel on the member 360 page.

Every page reads the nightly job's rows only (analytics/selectors.py). Managers see the stores
on their login and nothing else: a store outside them is refused (403), never shown.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from core.exports import csv_response
from members.models import Member
from members.permissions import staff_required
from members.selectors import staff_store_ids
from tiers.selectors import tier_levels

from .charts import PANELS, panel_build
from .forms import DashboardFilterForm, MonthField
from .models import MemberFigures
from .rfm import rfm_cell_label
from .selectors import (
    AT_RISK_CHURNED,
    AT_RISK_HIGH,
    Scope,
    analytics_as_of,
    at_risk_members,
    early_warning,
)

PERMISSION = "analytics.view_dashboard"
AT_RISK_PAGE_SIZE = 50
AT_RISK_CSV_BATCH = 2000


def _filters(request: HttpRequest) -> tuple[DashboardFilterForm, Scope | None]:
    """The filter form bound to the query string, and its scope when valid.

    A store outside the reader's is refused before anything is read (403): a manager who
    edits the URL to another store's id gets no figure of it.
    """
    user = request.user
    store_ids = staff_store_ids(user=user)
    if store_ids == frozenset():
        raise PermissionDenied(_("Your login acts for no store: ask an administrator."))
    form = DashboardFilterForm(
        request.GET or None, user=user, today=analytics_as_of() or timezone.localdate()
    )
    raw_store = request.GET.get("store", "")
    # isascii: "²" is a digit to str.isdigit() but not to int().
    if raw_store.strip().isascii() and raw_store.strip().isdigit():
        offered = {pk for pk, _label in form.fields["store"].choices}
        if int(raw_store) not in offered:
            raise PermissionDenied(_("You can see the figures of your own stores only."))
    if not form.is_bound:
        form = DashboardFilterForm({}, user=user, today=form.today)
    if not form.is_valid():
        return form, None
    return form, form.scope()


def _scope_query(scope: Scope) -> str:
    return urlencode(
        {
            "start": scope.start.strftime("%Y-%m"),
            "end": scope.end.strftime("%Y-%m"),
            "store": scope.store_key,
            "tier": scope.tier_key,
        }
    )


@require_GET
@staff_required(PERMISSION)
def dashboard_view(request: HttpRequest) -> HttpResponse:
    form, scope = _filters(request)
    context: dict[str, Any] = {"form": form, "as_of": analytics_as_of()}
    if scope is None:
        return render(request, "analytics/dashboard.html", context, status=400)
    query = _scope_query(scope)
    warning = early_warning(store_key=scope.store_key, tier_key=scope.tier_key)
    context.update(
        query=query,
        panels=[
            {"name": name, "title": title, "url": reverse("staff:analytics-panel", args=[name])}
            for name, (title, _builder) in PANELS.items()
        ],
        warning=warning,
        high_risk_threshold=_percent(settings.ANALYTICS_ALERT_HIGH_RISK_SHARE),
        churn_threshold=_percent(settings.ANALYTICS_ALERT_CHURN_RATE),
        high_risk_share=_percent(warning.high_risk_share),
        churn_rate=_percent(warning.churn_rate),
    )
    return render(request, "analytics/dashboard.html", context)


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


@require_GET
@staff_required(PERMISSION)
def panel_view(request: HttpRequest, name: str) -> HttpResponse:
    """One panel: the fragment for the dashboard's htmx request, or a page of its own (the
    link the dashboard shows without JavaScript)."""
    if name not in PANELS:
        raise Http404
    form, scope = _filters(request)
    if scope is None:
        return render(request, "analytics/dashboard.html", {"form": form}, status=400)
    panel = panel_build(name=name, scope=scope)
    query = _scope_query(scope)
    context = {
        "panel": panel,
        "query": query,
        "csv_url": reverse("staff:analytics-panel-csv", args=[name]) + "?" + query,
        "form": form,
        "as_of": analytics_as_of(),
    }
    template = "analytics/_panel.html" if request.htmx else "analytics/panel.html"
    return render(request, template, context)


@require_GET
@staff_required(PERMISSION)
def panel_csv_view(request: HttpRequest, name: str) -> HttpResponse:
    if name not in PANELS:
        raise Http404
    form, scope = _filters(request)
    if scope is None:
        return render(request, "analytics/dashboard.html", {"form": form}, status=400)
    panel = panel_build(name=name, scope=scope)
    filename = (
        f"{name}-{scope.start:%Y-%m}-{scope.end:%Y-%m}-s{scope.store_key}-t{scope.tier_key}.csv"
    )
    return csv_response(filename=filename, header=panel.table.headers, rows=panel.table.rows)


# --- The members behind an alert -----------------------------------------------------------


def _at_risk(request: HttpRequest) -> tuple[str, Scope, Any]:
    _form, scope = _filters(request)
    kind = request.GET.get("kind", "")
    if scope is None or kind not in (AT_RISK_HIGH, AT_RISK_CHURNED):
        raise Http404
    month = None
    if kind == AT_RISK_CHURNED:
        try:
            month = MonthField().clean(request.GET.get("month", ""))
        except forms.ValidationError as error:  # a bad month is a bad link
            raise Http404 from error
        if month is None:
            raise Http404
    figures = at_risk_members(
        kind=kind,
        store_ids=staff_store_ids(user=request.user),
        store_key=scope.store_key,
        tier_key=scope.tier_key,
        month=month,
    )
    return kind, scope, (figures, month)


def _tier_names() -> dict[int, str]:
    return {level.pk: level.name for level in tier_levels()}


def _at_risk_row(figures: MemberFigures, tiers: dict[int, str]) -> list[Any]:
    member = figures.member
    last = figures.last_purchase_at
    return [
        member.member_no,
        member.name,
        member.phone_masked,
        tiers.get(figures.tier_key, ""),
        timezone.localdate(last) if last else None,
        None if figures.churn_probability is None else round(figures.churn_probability, 4),
        figures.get_churn_band_display(),
    ]


def _at_risk_headers() -> list[str]:
    return [
        _("Member number"),
        _("Name"),
        _("Mobile phone"),
        _("Tier"),
        _("Last purchase"),
        _("Churn probability"),
        _("Churn risk"),
    ]


@require_GET
@staff_required(PERMISSION)
def at_risk_view(request: HttpRequest) -> HttpResponse:
    kind, scope, (figures, month) = _at_risk(request)
    page = Paginator(figures, AT_RISK_PAGE_SIZE).get_page(request.GET.get("page"))
    tiers = _tier_names()
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "kind": kind,
        "month": month,
        "page": page,
        "rows": [(f, _at_risk_row(f, tiers)) for f in page.object_list],
        "headers": _at_risk_headers(),
        "filter_query": query.urlencode(),
        "dashboard_query": _scope_query(scope),
    }
    return render(request, "analytics/at_risk.html", context)


@require_GET
@staff_required(PERMISSION)
def at_risk_csv_view(request: HttpRequest) -> HttpResponse:
    kind, scope, (figures, month) = _at_risk(request)
    tiers = _tier_names()
    suffix = f"-{month:%Y-%m}" if month else ""
    return csv_response(
        filename=f"members-{kind}{suffix}-s{scope.store_key}.csv",
        header=_at_risk_headers(),
        rows=(_at_risk_row(f, tiers) for f in figures.iterator(AT_RISK_CSV_BATCH)),
    )


# --- The member 360 panel (registered in apps.py) -----------------------------------------


def member_figures_panel(member: Member, request: HttpRequest) -> dict | None:
    """RFM cell, lifecycle stage and churn risk, as of the last analytics run."""
    figures = MemberFigures.objects.filter(member=member).first()
    probability = None
    if figures is not None and figures.churn_probability is not None:
        probability = f"{figures.churn_probability * 100:.0f}%"
    return {
        "figures": figures,
        "rfm_label": _rfm_label(figures),
        "probability": probability,
        "horizon": settings.CHURN_HORIZON_DAYS,
    }


def _rfm_label(figures: MemberFigures | None) -> str:
    return str(rfm_cell_label(figures.rfm_cell)) if figures is not None else ""
