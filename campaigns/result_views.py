"""A campaign's results in the back office: the panel the campaign page includes, its own
page, the refresh on demand and the CSV.

Marketers, administrators and auditors (every store) read the stored all-store results
(nightly and refreshed on demand), computed on the fly while none is stored yet; store staff
and managers read their own stores' members' results, computed on the fly (nothing of
another store is stored for them to see).
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.exports import csv_response
from members.permissions import staff_required
from members.selectors import staff_store_ids
from members.services import audit_log

from . import results as r
from . import stats
from .models import Campaign, CampaignResult
from .selectors import campaign_get

VIEW_PERMISSION = "campaigns.view_campaign_results"
REFRESH_PERMISSION = "campaigns.manage_segment"

Cell = str | int | float | Decimal | None


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]


# --- Numbers as the page shows them -----------------------------------------------------------


def _percent(share: float | None, *, signed: bool = False) -> str:
    if share is None:
        return "—"
    return f"{share * 100:+.1f}%" if signed else f"{share * 100:.1f}%"


def _yuan(value: float | Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"¥{value:+,.2f}" if signed else f"¥{value:,.2f}"


def _number(value: float | None, places: int = 2, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{places}f}" if signed else f"{value:.{places}f}"


def _round(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)


def _interval(uplift: r.Uplift, show) -> str:
    if uplift.low is None or uplift.high is None:
        return "—"
    return f"[{show(uplift.low)}, {show(uplift.high)}]"


def _when(value: datetime.datetime | None) -> str:
    return date_format(timezone.localtime(value), "Y-m-d H:i") if value else "—"


METHODS = {
    stats.WALD: lambda: _("Wald"),
    stats.NEWCOMBE: lambda: _("Newcombe hybrid score (Wilson)"),
    stats.WELCH: lambda: _("Welch t"),
    stats.DELTA: lambda: _("delta method"),
}


def _method(uplift: r.Uplift) -> str:
    label = METHODS.get(uplift.method)
    text = label() if label else ""
    if uplift.df is not None:
        text = _("%(method)s, %(df)s degrees of freedom") % {
            "method": text,
            "df": f"{uplift.df:.1f}",
        }
    return text


def _notes(figures: r.CampaignResultFigures) -> list[str]:
    """What to keep in mind, in words: missing figures and the choices behind the others."""
    words = {
        r.NOTE_NOT_LAUNCHED: _("Results appear once the campaign has been launched."),
        r.NOTE_WINDOW_OPEN: _(
            "The conversion window is still open: these figures run to %(end)s; the window "
            "closes %(closes)s."
        )
        % {"end": _when(figures.window_end), "closes": _when(figures.window_closes)},
        r.NOTE_NO_CONTROL: _("No member is in the holdout, so no uplift can be measured."),
        r.NOTE_NO_TREATMENT: _("No member is in the treated group."),
        r.NOTE_FEW_CONVERSIONS: _(
            "An arm has fewer than 10 conversions (or non-conversions): the conversion "
            "interval is Newcombe's hybrid score interval, not the normal approximation."
        ),
        r.NOTE_NO_BASELINE: _(
            "The holdout's revenue per member is ¥0: there is no baseline for a relative uplift."
        ),
        r.NOTE_NO_VARIANCE: _("Revenue does not vary within the arms: no interval."),
        r.NOTE_NOT_CAPPED: _(
            "Revenue was not capped: the chosen percentile is ¥0 (most members bought nothing)."
        ),
        r.NOTE_MULTIPLIER_POINTS: _(
            "A multiplier promotion's extra points are part of each purchase's earning; the "
            "points cost counts only the campaign's own postings."
        ),
        r.NOTE_STORES: _("Members whose home store is one of your stores only."),
    }
    return [words[code] for code in figures.notes if code in words]


# --- The figures a reader may see ------------------------------------------------------------


def campaign_results_for(
    *, campaign: Campaign, user: Any, now: datetime.datetime | None = None
) -> r.CampaignResultFigures | None:
    """The results `user` may read: all stores' (stored, else computed now) or their own
    stores' (computed now). None for someone who may not read results."""
    if not user.has_perm(VIEW_PERMISSION):
        return None
    now = now or timezone.now()
    store_ids = staff_store_ids(user=user)
    if store_ids is None:
        stored = CampaignResult.objects.filter(campaign=campaign).first()
        if stored is not None:
            return r.campaign_result_figures(result=stored)
    return r.campaign_results_compute(campaign=campaign, now=now, store_ids=store_ids)


def results_table(figures: r.CampaignResultFigures) -> Table:
    """Every figure, one row each: the page's table and the CSV (numbers stay numbers)."""
    t, c = figures.treatment, figures.control
    headers = [
        _("Figure"),
        _("Treatment"),
        _("Holdout"),
        _("Difference"),
        _("95% CI low"),
        _("95% CI high"),
        _("Method"),
    ]

    def uplift(label: str, a: Cell, b: Cell, u: r.Uplift, places: int) -> list[Cell]:
        return [
            label,
            a,
            b,
            _round(u.value, places),
            _round(u.low, places),
            _round(u.high, places),
            _method(u),
        ]

    cost = figures.cost
    rows: list[list[Cell]] = [
        [_("Members"), t.members, c.members, None, None, None, ""],
        [_("Conversions"), t.conversions, c.conversions, None, None, None, ""],
        uplift(
            _("Conversion rate"),
            _round(t.conversion_rate, 4),
            _round(c.conversion_rate, 4),
            figures.conversion_uplift,
            4,
        ),
        uplift(
            _("Revenue per member (¥)"),
            _round(t.revenue_per_member, 2),
            _round(c.revenue_per_member, 2),
            figures.revenue_uplift,
            2,
        ),
        uplift(
            _("Revenue per member, relative uplift"),
            None,
            None,
            figures.relative_revenue_uplift,
            4,
        ),
        uplift(
            _("Orders per member"),
            _round(t.orders_per_member, 3),
            _round(c.orders_per_member, 3),
            figures.orders_uplift,
            3,
        ),
        [_("Revenue (¥)"), t.revenue_total, c.revenue_total, None, None, None, ""],
        [_("Orders"), t.orders, c.orders, None, None, None, ""],
        [_("Sample-ratio check p-value"), _round(figures.sample_ratio_p, 6), *[None] * 4, ""],
        [_("Points issued"), cost.points_issued, *[None] * 5],
        [_("Points cost (¥)"), cost.points_cost, *[None] * 5],
        [_("Coupons used"), cost.coupons_used, *[None] * 5],
        [_("Coupon face value used (¥)"), cost.coupons_face_value, *[None] * 5],
        [_("SMS sent"), cost.sms_sent, *[None] * 5],
        [_("E-mails sent"), cost.emails_sent, *[None] * 5],
        [_("Message cost (¥)"), cost.messages_cost, *[None] * 5],
        [_("Total cost (¥)"), cost.total, *[None] * 5],
        [_("Incremental revenue (¥)"), figures.incremental_revenue, *[None] * 5],
        [_("Return on cost (incremental revenue ÷ cost)"), figures.return_on_cost, *[None] * 5],
        [_("Window start"), figures.window_start, *[None] * 5],
        [_("Figures up to"), figures.window_end, *[None] * 5],
        [_("Conversion window (days)"), figures.window_days, *[None] * 5],
        [_("Revenue cap percentile"), figures.revenue_cap_percentile, *[None] * 5],
        [_("Revenue cap (¥)"), figures.revenue_cap, *[None] * 5],
        [_("Members capped"), figures.members_capped, *[None] * 5],
        [_("Computed"), figures.computed_at, *[None] * 5],
    ]
    return Table(headers=headers, rows=[row[: len(headers)] for row in rows])


def _arms_table(figures: r.CampaignResultFigures) -> Table:
    """The chart's table view: each arm's figures as the chart shows them."""
    headers = [
        _("Arm"),
        _("Members"),
        _("Conversions"),
        _("Conversion rate"),
        _("Revenue per member"),
        _("Orders per member"),
    ]
    rows = []
    for label, arm in ((_("Treatment"), figures.treatment), (_("Holdout"), figures.control)):
        rows.append(
            [
                label,
                arm.members,
                arm.conversions,
                _percent(arm.conversion_rate),
                _yuan(arm.revenue_per_member),
                _number(arm.orders_per_member, 3),
            ]
        )
    return Table(headers=headers, rows=rows)


def _chart_option(figures: r.CampaignResultFigures) -> dict[str, Any]:
    """Each arm's conversion rate (left axis, %) and revenue per member (right axis, ¥)."""
    arms = [_("Treatment"), _("Holdout")]
    rates = [
        _round(arm.conversion_rate * 100, 1) if arm.conversion_rate is not None else None
        for arm in (figures.treatment, figures.control)
    ]
    revenue = [_round(arm.revenue_per_member, 2) for arm in (figures.treatment, figures.control)]
    axis = {"type": "value", "splitLine": {"show": True}}
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "grid": {"left": 8, "right": 8, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": arms},
        "yAxis": [
            axis | {"axisLabel": {"formatter": "{value}%"}},
            axis | {"splitLine": {"show": False}, "axisLabel": {"formatter": "¥{value}"}},
        ],
        "series": [
            {"name": _("Conversion rate"), "type": "bar", "data": rates, "yAxisIndex": 0},
            {"name": _("Revenue per member"), "type": "bar", "data": revenue, "yAxisIndex": 1},
        ],
    }


def campaign_results_context(*, campaign: Campaign, user: Any) -> dict:
    """What templates/campaigns/results/_panel.html needs, for the campaign page to include."""
    figures = campaign_results_for(campaign=campaign, user=user)
    if figures is None:
        return {"results_allowed": False}
    restricted = staff_store_ids(user=user) is not None
    launched = r.NOTE_NOT_LAUNCHED not in figures.notes
    conversion, revenue = figures.conversion_uplift, figures.revenue_uplift
    relative, orders = figures.relative_revenue_uplift, figures.orders_uplift
    cost = figures.cost
    results = {
        "figures": figures,
        "launched": launched,
        "notes": _notes(figures),
        "srm_warning": figures.sample_ratio_warning,
        "srm_p": "—" if figures.sample_ratio_p is None else f"{figures.sample_ratio_p:.3g}",
        # A new id at each render: htmx's settle copies the attributes of the element being
        # replaced onto the new one with the same id, the style ECharts put on the chart's
        # container included, which the CSP (style-src 'self') refuses.
        "chart_id": f"campaign-results-{secrets.token_hex(4)}",
        "arms_table": _arms_table(figures),
        "chart_option": _chart_option(figures),
        "uplifts": [
            (
                _("Conversion rate"),
                _percent(conversion.value, signed=True),
                _interval(conversion, lambda v: _percent(v, signed=True)),
                _method(conversion),
            ),
            (
                _("Revenue per member"),
                _yuan(revenue.value, signed=True),
                _interval(revenue, lambda v: _yuan(v, signed=True)),
                _method(revenue),
            ),
            (
                _("Revenue per member, relative"),
                _percent(relative.value, signed=True),
                _interval(relative, lambda v: _percent(v, signed=True)),
                _method(relative),
            ),
            (
                _("Orders per member"),
                _number(orders.value, 3, signed=True),
                _interval(orders, lambda v: _number(v, 3, signed=True)),
                _method(orders),
            ),
        ],
        "cost": [
            (
                _("Points issued"),
                _("%(points)s points × ¥%(value)s × %(redemption)s expected redemption = %(cost)s")
                % {
                    "points": f"{cost.points_issued:,}",
                    "value": settings.ANALYTICS_POINT_VALUE,
                    "redemption": settings.CAMPAIGN_EXPECTED_REDEMPTION,
                    "cost": _yuan(cost.points_cost),
                },
            ),
            (
                _("Coupons used"),
                _("%(count)s, face value %(value)s")
                % {"count": cost.coupons_used, "value": _yuan(cost.coupons_face_value)},
            ),
            (
                _("Messages sent"),
                _("%(sms)s SMS, %(emails)s e-mails: %(cost)s")
                % {
                    "sms": cost.sms_sent,
                    "emails": cost.emails_sent,
                    "cost": _yuan(cost.messages_cost),
                },
            ),
            (_("Total cost"), _yuan(cost.total)),
            (
                _("Incremental revenue"),
                _yuan(figures.incremental_revenue, signed=True),
            ),
            (
                _("Return on cost"),
                "—"
                if figures.return_on_cost is None
                else _("¥%(ratio)s of incremental revenue per ¥1 spent")
                % {"ratio": figures.return_on_cost},
            ),
        ],
        "window": _("%(start)s to %(end)s (%(days)s days, fixed before launch)")
        % {
            "start": _when(figures.window_start),
            "end": _when(figures.window_closes),
            "days": figures.window_days,
        },
        "cap": (
            _(
                "Revenue per member is net of returns, members without purchases counted as "
                "¥0; each member's revenue is capped at percentile %(percentile)s of the "
                "members' revenue (%(cap)s; %(capped)s members capped)."
            )
            % {
                "percentile": f"{figures.revenue_cap_percentile:g}",
                "cap": _yuan(figures.revenue_cap),
                "capped": figures.members_capped,
            }
        ),
        "computed": _when(figures.computed_at),
    }
    return {
        "results_allowed": True,
        "campaign": campaign,
        "results": results,
        "results_restricted": restricted,
        "results_can_refresh": not restricted and user.has_perm(REFRESH_PERMISSION),
        "results_url": reverse("staff:campaign-results", args=[campaign.pk]),
        "results_refresh_url": reverse("staff:campaign-results-refresh", args=[campaign.pk]),
        "results_csv_url": reverse("staff:campaign-results-csv", args=[campaign.pk]),
    }


# --- Views --------------------------------------------------------------------------------------


def _campaign_or_404(request: HttpRequest, pk: int) -> Campaign:
    """The campaign if this login may see it: store staff and managers only those that
    reached their stores' members (`campaign_get`), as if the others did not exist."""
    campaign = campaign_get(user=request.user, campaign_id=pk)
    if campaign is None:
        raise Http404
    return campaign


@require_GET
@staff_required(VIEW_PERMISSION)
def campaign_results_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The results on a page of their own (the panel alone for an htmx request)."""
    campaign = _campaign_or_404(request, pk)
    context = campaign_results_context(campaign=campaign, user=request.user)
    template = "campaigns/results/_panel.html" if request.htmx else "campaigns/results/page.html"
    return render(request, template, context)


@require_POST
@staff_required(VIEW_PERMISSION, REFRESH_PERMISSION)
def campaign_results_refresh_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Compute the all-store results again now (marketers and administrators)."""
    campaign = _campaign_or_404(request, pk)
    if staff_store_ids(user=request.user) is not None:
        raise PermissionDenied(_("Only a login for every store refreshes the stored results."))
    r.campaign_results_refresh(campaign=campaign, now=timezone.now())
    if request.htmx:
        context = campaign_results_context(campaign=campaign, user=request.user)
        return render(request, "campaigns/results/_panel.html", context)
    return redirect("staff:campaign-results", pk=campaign.pk)


@require_GET
@staff_required(VIEW_PERMISSION)
def campaign_results_csv_view(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    figures = campaign_results_for(campaign=campaign, user=request.user)
    if figures is None:  # staff_required has checked the permission already
        raise PermissionDenied
    store_ids = figures.store_ids
    audit_log(
        actor=request.user,
        action="campaign.results_export",
        target=campaign,
        details={"stores": "all" if store_ids is None else store_ids},
    )
    table = results_table(figures)
    suffix = "" if store_ids is None else "-stores-" + "-".join(map(str, store_ids))
    return csv_response(
        filename=f"campaign-{campaign.pk}-results{suffix}.csv",
        header=table.headers,
        rows=table.rows,
    )
