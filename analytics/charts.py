"""The dashboard panels: each turns the roll-up rows of a scope into a chart and its table.

A panel is an ECharts option (plain data, passed to the page with json_script) and a table
with the same figures, which is also the panel's CSV. The table holds the numbers as they
are (a spreadsheet sums them); the chart reads floats. Shares are percentages with one
decimal. Nothing here computes a figure the nightly job did not write, apart from ratios of
two of its rows (a rate, an average) that the table shows beside both.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tiers.selectors import add_months, tier_levels

from . import metrics, selectors
from .models import RiskBand, Stage
from .rfm import rfm_cell_of
from .selectors import Scope

Cell = str | int | Decimal | None

PERCENT = Decimal("0.1")
MONEY = Decimal("0.01")


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]


@dataclass
class Panel:
    name: str
    option: dict[str, Any]
    table: Table
    # Figures that are one number, not a series (the liability), shown above the chart.
    facts: list[tuple[str, str]] = field(default_factory=list)
    # Said under the heading: what the figures mean or what they leave out.
    note: str = ""
    as_of: datetime.date | None = None

    @property
    def title(self) -> str:
        return str(PANELS[self.name][0])

    @property
    def empty(self) -> bool:
        return not self.table.rows


# --- Numbers --------------------------------------------------------------------------------


def _count(value: Decimal | int | None) -> int:
    return int(value or 0)


def _money(value: Decimal | int | None) -> Decimal:
    return Decimal(value or 0).quantize(MONEY)


def _percent(part: Decimal | int | None, whole: Decimal | int | None) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part or 0) * 100 / Decimal(whole)).quantize(PERCENT)


def _ratio(part: Decimal | int | None, whole: Decimal | int | None, places: str) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part or 0) / Decimal(whole)).quantize(Decimal(places))


def _float(value: Decimal | int | None) -> float | None:
    return None if value is None else float(value)


def _month(day: datetime.date) -> str:
    return day.strftime("%Y-%m")


# --- Chart options ---------------------------------------------------------------------------


PLAIN, PERCENT_AXIS, YUAN_AXIS = "{value}", "{value}%", "¥{value}"


def _axis(label: str, *, lines: bool = True) -> dict[str, Any]:
    # ECharts fills {value} in itself: a template string, not a function, so the option
    # stays plain data (the CSP allows no code in it).
    return {"type": "value", "splitLine": {"show": lines}, "axisLabel": {"formatter": label}}


def _base(
    *, categories: list[str], series: list[dict], axes: tuple[str, ...] = (PLAIN,)
) -> dict[str, Any]:
    """A bar/line chart over categories; one value axis per label template in `axes`."""
    y_axes = [_axis(label, lines=index == 0) for index, label in enumerate(axes)]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "grid": {"left": 8, "right": 8, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": categories},
        "yAxis": y_axes if len(y_axes) > 1 else y_axes[0],
        "series": series,
    }


def _series(name: str, kind: str, values: list, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "data": [_float(v) for v in values], **extra}


def _heatmap(
    *, x: list[str], y: list[str], cells: list[dict], top: float, x_name: str, y_name: str
) -> dict[str, Any]:
    return {
        "animation": False,
        "tooltip": {"position": "top"},
        "grid": {"left": 8, "right": 8, "top": 24, "bottom": 48, "containLabel": True},
        "xAxis": {
            "type": "category",
            "data": x,
            "name": x_name,
            "nameLocation": "middle",
            "nameGap": 24,
            "splitArea": {"show": True},
        },
        "yAxis": {"type": "category", "data": y, "name": y_name, "splitArea": {"show": True}},
        "visualMap": {
            "min": 0,
            "max": top or 1,
            "calculable": False,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "itemHeight": 80,
            "show": False,
        },
        "series": [
            {
                "type": "heatmap",
                "data": cells,
                "label": {"show": True, "fontSize": 10, "lineHeight": 13},
            }
        ],
    }


# --- Panels ---------------------------------------------------------------------------------


def _monthly_panel(
    *,
    name: str,
    scope: Scope,
    names: list[str],
    columns: list[str],
    row: Callable[[dict[str, Decimal]], list[Cell]],
    chart: Callable[[list[str], list[list[Cell]]], dict[str, Any]],
    note: str = "",
) -> Panel:
    """A panel with one row per month of the scope that has any of the metrics' figures."""
    figures = selectors.rollup_monthly(metrics=names, scope=scope)
    rows = []
    for month in scope.months:
        values = {metric: figures[metric][month] for metric in names if month in figures[metric]}
        if values:
            rows.append([_month(month), *row(values)])
    option = chart([r[0] for r in rows], rows)
    return Panel(name=name, option=option, table=Table([_("Month"), *columns], rows), note=note)


def _column(rows: list[list[Cell]], index: int) -> list:
    return [r[index] for r in rows]


def members_panel(scope: Scope) -> Panel:
    names = [metrics.MEMBERS_TOTAL, metrics.MEMBERS_NEW, metrics.MEMBERS_ACTIVE]
    columns = [_("Members"), _("New members"), _("Active members")]
    return _monthly_panel(
        name="members",
        scope=scope,
        names=names,
        columns=columns,
        row=lambda v: [_count(v.get(m)) for m in names],
        chart=lambda months, rows: _base(
            categories=months,
            series=[
                _series(columns[0], "line", _column(rows, 1)),
                _series(columns[1], "bar", _column(rows, 2)),
                _series(columns[2], "bar", _column(rows, 3)),
            ],
        ),
        note=_("Active: members with a purchase in the month."),
    )


def tier_distribution_panel(scope: Scope) -> Panel:
    as_of, values = selectors.rollup_snapshot(
        metric=metrics.TIER_MEMBERS, store_key=scope.store_key, tier_key=scope.tier_key
    )
    total = sum(values.values(), Decimal(0))
    levels = tier_levels()
    known = {level.code for level in levels}
    labels = [(level.code, level.name) for level in levels if level.code in values]
    labels += [(code, code) for code in sorted(values) if code not in known]
    rows: list[list[Cell]] = [
        [label, _count(values[code]), _percent(values[code], total)] for code, label in labels
    ]
    option = _base(
        categories=[r[0] for r in rows],
        series=[_series(_("Members"), "bar", _column(rows, 1))],
    )
    return Panel(
        name="tier-distribution",
        option=option,
        table=Table([_("Tier"), _("Members"), _("Share (%)")], rows),
        as_of=as_of,
    )


def tier_migration_panel(scope: Scope) -> Panel:
    columns = [_("Upgrades"), _("Downgrades"), _("Net change")]
    return _monthly_panel(
        name="tier-migration",
        scope=scope,
        names=[metrics.TIER_UP, metrics.TIER_DOWN],
        columns=columns,
        row=lambda v: [
            _count(v.get(metrics.TIER_UP)),
            _count(v.get(metrics.TIER_DOWN)),
            _count(v.get(metrics.TIER_UP)) - _count(v.get(metrics.TIER_DOWN)),
        ],
        chart=lambda months, rows: _base(
            categories=months,
            series=[
                _series(columns[0], "bar", _column(rows, 1)),
                _series(columns[1], "bar", _column(rows, 2)),
            ],
        ),
        note=_("From the tier history: each upgrade or downgrade in the month counts once."),
    )


def revenue_panel(scope: Scope) -> Panel:
    columns = [
        _("Orders"),
        _("Revenue (¥)"),
        _("Returns (¥)"),
        _("Net revenue (¥)"),
        _("Average order value (¥)"),
    ]

    def row(v: dict[str, Decimal]) -> list[Cell]:
        revenue, returns = v.get(metrics.REVENUE, 0), v.get(metrics.RETURNS, 0)
        orders = _count(v.get(metrics.ORDERS))
        return [
            orders,
            _money(revenue),
            _money(returns),
            _money(revenue) - _money(returns),
            _ratio(revenue, orders, "0.01"),
        ]

    return _monthly_panel(
        name="revenue",
        scope=scope,
        names=[metrics.ORDERS, metrics.REVENUE, metrics.RETURNS],
        columns=columns,
        row=row,
        chart=lambda months, rows: _base(
            categories=months,
            axes=(YUAN_AXIS, YUAN_AXIS),
            series=[
                _series(columns[3], "bar", _column(rows, 4)),
                _series(columns[4], "line", _column(rows, 5), yAxisIndex=1),
            ],
        ),
        note=_(
            "Returns count in the month they were made. Average order value: revenue before "
            "returns ÷ orders."
        ),
    )


def frequency_panel(scope: Scope) -> Panel:
    columns = [
        _("Buying members"),
        _("Members with 2+ orders"),
        _("Orders per buying member"),
        _("Repurchase rate (%)"),
    ]

    def row(v: dict[str, Decimal]) -> list[Cell]:
        buyers, repeat = _count(v.get(metrics.BUYERS)), _count(v.get(metrics.REPEAT_BUYERS))
        return [
            buyers,
            repeat,
            _ratio(v.get(metrics.ORDERS), buyers, "0.01"),
            _percent(repeat, buyers),
        ]

    return _monthly_panel(
        name="frequency",
        scope=scope,
        names=[metrics.BUYERS, metrics.REPEAT_BUYERS, metrics.ORDERS],
        columns=columns,
        row=row,
        chart=lambda months, rows: _base(
            categories=months,
            axes=(PLAIN, PERCENT_AXIS),
            series=[
                _series(columns[2], "line", _column(rows, 3)),
                _series(columns[3], "line", _column(rows, 4), yAxisIndex=1),
            ],
        ),
        note=_(
            "Repurchase rate: members with two or more orders in the month ÷ members with "
            "one or more."
        ),
    )


def points_panel(scope: Scope) -> Panel:
    names = [
        metrics.POINTS_ISSUED,
        metrics.POINTS_REDEEMED,
        metrics.POINTS_EXPIRED,
        metrics.POINTS_OTHER,
    ]
    columns = [_("Issued"), _("Redeemed"), _("Expired"), _("Other (reversals, adjustments)")]
    return _monthly_panel(
        name="points",
        scope=scope,
        names=names,
        columns=columns,
        row=lambda v: [_count(v.get(m)) for m in names],
        # The chart shows the three flows; the table adds the rest, so that over all months
        # issued − redeemed − expired + other is the outstanding balance.
        chart=lambda months, rows: _base(
            categories=months,
            series=[_series(c, "bar", _column(rows, i + 1)) for i, c in enumerate(columns[:3])],
        ),
    )


def liability_panel(scope: Scope) -> Panel:
    liability = selectors.points_liability(store_key=scope.store_key, tier_key=scope.tier_key)
    cohorts = selectors.issue_cohorts(
        store_key=scope.store_key, tier_key=scope.tier_key, start=scope.start, end=scope.end
    )
    rows: list[list[Cell]] = [
        [
            _month(c.month),
            _count(c.issued),
            _count(c.redeemed),
            _count(c.expired),
            _count(c.open),
            _percent(c.redeemed, c.issued),
            _percent(c.expired, c.issued),
            _("Yes") if c.closed else _("No"),
        ]
        for c in cohorts
    ]
    columns = [
        _("Issue month"),
        _("Issued"),
        _("Redeemed"),
        _("Expired"),
        _("Still open"),
        _("Redemption rate (%)"),
        _("Breakage (%)"),
        _("Closed"),
    ]
    breakage = f"{(liability.expected_breakage * 100).quantize(PERCENT)}%"
    source = {
        "setting": _("set by ANALYTICS_EXPECTED_BREAKAGE"),
        "closed": _("average of %(months)s closed issue months")
        % {"months": liability.closed_months},
        "none": _("no issue month is closed yet, so none is assumed"),
    }[liability.breakage_source]
    facts = (
        [
            (_("Outstanding points"), f"{_count(liability.outstanding):,}"),
            (_("Value per point"), f"¥{liability.point_value}"),
            (_("Expected breakage"), f"{breakage} ({source})"),
            (_("Liability"), f"¥{liability.amount:,}"),
        ]
        if liability.as_of is not None
        else []
    )
    option = _base(
        axes=(PERCENT_AXIS,),
        categories=[r[0] for r in rows],
        series=[
            _series(columns[5], "bar", _column(rows, 5)),
            _series(columns[6], "bar", _column(rows, 6)),
        ],
    )
    return Panel(
        name="liability",
        option=option,
        table=Table(columns, rows),
        facts=facts,
        note=_(
            "Liability = outstanding points × value per point × (1 − expected breakage). "
            "A month is closed when all its points have been spent or have expired."
        ),
        as_of=liability.as_of,
    )


def redemption_curve_panel(scope: Scope) -> Panel:
    by_month = selectors.rollup_by_dim(
        metric=metrics.LOT_REDEEMED_BY_AGE,
        store_key=scope.store_key,
        tier_key=scope.tier_key,
        start=scope.start,
        end=scope.end,
    )
    cohorts = {
        c.month: c
        for c in selectors.issue_cohorts(
            store_key=scope.store_key, tier_key=scope.tier_key, start=scope.start, end=scope.end
        )
    }
    ages = sorted({int(dim) for values in by_month.values() for dim in values if dim != ""})
    last_age = ages[-1] if ages else -1
    rows: list[list[Cell]] = []
    series = []
    for month in sorted(cohorts):
        issued = cohorts[month].issued
        values, spent, shares = by_month.get(month, {}), Decimal(0), []
        for age in range(last_age + 1):
            if str(age) in values:
                spent += values[str(age)]
            # Months not reached yet by this cohort stay empty, not flat.
            reached = add_months(month, age) <= scope.end
            shares.append(_percent(spent, issued) if reached else None)
        rows.append([_month(month), _count(issued), *shares])
        series.append(_series(_month(month), "line", shares, connectNulls=False))
    option = _base(
        categories=[str(age) for age in range(last_age + 1)], series=series, axes=(PERCENT_AXIS,)
    )
    option["xAxis"]["name"] = _("Months since issue")
    option["xAxis"]["nameLocation"] = "middle"
    option["xAxis"]["nameGap"] = 24
    option["grid"]["bottom"] = 32
    headers = [_("Issue month"), _("Issued")] + [
        _("Redeemed by month %(age)s (%%)") % {"age": age} for age in range(last_age + 1)
    ]
    return Panel(
        name="redemption-curve",
        option=option,
        table=Table(headers, rows if ages else []),
        note=_(
            "The share of each issue month's points spent by the end of the k-th month after it."
        ),
    )


def stages_panel(scope: Scope) -> Panel:
    as_of, values = selectors.rollup_snapshot(
        metric=metrics.STAGE_MEMBERS, store_key=scope.store_key, tier_key=scope.tier_key
    )
    total = sum(values.values(), Decimal(0))
    rows: list[list[Cell]] = [
        [label, _count(values[stage]), _percent(values[stage], total)]
        for stage, label in Stage.choices
        if stage in values
    ]
    option = _base(
        categories=[r[0] for r in rows], series=[_series(_("Members"), "bar", _column(rows, 1))]
    )
    return Panel(
        name="stages",
        option=option,
        table=Table([_("Stage"), _("Members"), _("Share (%)")], rows),
        note=_(
            "Active: a purchase in the last %(active)s days; silent: up to %(silent)s days; "
            "churned: longer."
        )
        % {"active": settings.ANALYTICS_ACTIVE_DAYS, "silent": settings.ANALYTICS_SILENT_DAYS},
        as_of=as_of,
    )


def rfm_panel(scope: Scope) -> Panel:
    as_of, counts = selectors.rollup_snapshot(
        metric=metrics.RFM_MEMBERS, store_key=scope.store_key, tier_key=scope.tier_key
    )
    _day, revenue = selectors.rollup_snapshot(
        metric=metrics.RFM_REVENUE, store_key=scope.store_key, tier_key=scope.tier_key
    )
    total_revenue = sum(revenue.values(), Decimal(0))
    grid_count: dict[tuple[int, int], Decimal] = {}
    grid_revenue: dict[tuple[int, int], Decimal] = {}
    rows: list[list[Cell]] = []
    for cell in sorted(counts, key=lambda c: tuple(-int(p) for p in c.split("-"))):
        r, f, m = (int(part) for part in cell.split("-"))
        grid_count[r, f] = grid_count.get((r, f), Decimal(0)) + counts[cell]
        grid_revenue[r, f] = grid_revenue.get((r, f), Decimal(0)) + revenue.get(cell, 0)
        rows.append(
            [
                cell,
                str(rfm_cell_of(r=r, f=f, m=m).label),
                r,
                f,
                m,
                _count(counts[cell]),
                _money(revenue.get(cell)),
                _percent(revenue.get(cell), total_revenue),
            ]
        )
    cells = [
        {
            "value": [f - 1, r - 1, _count(count)],
            "label": {
                "formatter": f"{_count(count)}\n{_percent(grid_revenue[r, f], total_revenue) or 0}%"
            },
        }
        for (r, f), count in grid_count.items()
    ]
    option = _heatmap(
        x=["1", "2", "3", "4", "5"],
        y=["1", "2", "3", "4", "5"],
        cells=cells,
        top=max((float(c) for c in grid_count.values()), default=1),
        x_name=_("F score (orders, 365 days)"),
        y_name=_("R score"),
    )
    return Panel(
        name="rfm",
        option=option,
        table=Table(
            [
                _("Cell (R-F-M)"),
                _("Segment"),
                _("R"),
                _("F"),
                _("M"),
                _("Members"),
                _("Net spend, 365 days (¥)"),
                _("Revenue share (%)"),
            ],
            rows,
        ),
        note=_(
            "Each square: members with that recency (R) and frequency (F) score, and their share "
            "of net spend over 365 days. Scores 1–5 by quintile, 5 the best; M is in the table."
        ),
        as_of=as_of,
    )


def cohorts_panel(scope: Scope) -> Panel:
    sizes = selectors.rollup_by_dim(
        metric=metrics.COHORT_SIZE,
        store_key=scope.store_key,
        tier_key=scope.tier_key,
        start=scope.start,
        end=scope.end,
    )
    active = selectors.rollup_by_dim(
        metric=metrics.COHORT_ACTIVE,
        store_key=scope.store_key,
        tier_key=scope.tier_key,
        start=scope.start,
        end=scope.end,
    )
    months = sorted(sizes)
    last = max((int(k) for values in active.values() for k in values), default=0)
    last = max(last, len(months) - 1)
    rows: list[list[Cell]] = []
    cells = []
    for y, month in enumerate(months):
        size = sizes[month].get("", Decimal(0))
        shares = []
        for k in range(last + 1):
            # The triangle: month k after enrolment has not happened yet for later cohorts.
            if add_months(month, k) > scope.end:
                shares.append(None)
                continue
            share = _percent(active.get(month, {}).get(str(k), 0), size)
            shares.append(share)
            if share is not None:
                cells.append({"value": [k, y, float(share)], "label": {"formatter": f"{share}%"}})
        rows.append([_month(month), _count(size), *shares])
    option = _heatmap(
        x=[str(k) for k in range(last + 1)],
        y=[_month(m) for m in months],
        cells=cells,
        top=100,
        x_name=_("Months since enrolment"),
        y_name="",
    )
    # The oldest cohort on top, so the triangle reads down and to the right.
    option["yAxis"]["inverse"] = True
    headers = [_("Enrolment month"), _("Members")] + [
        _("Month %(k)s (%%)") % {"k": k} for k in range(last + 1)
    ]
    return Panel(
        name="cohorts",
        option=option,
        table=Table(headers, rows),
        note=_("The share of each month's new members with a purchase k months after enrolling."),
    )


def churn_panel(scope: Scope) -> Panel:
    as_of, bands = selectors.rollup_snapshot(
        metric=metrics.CHURN_BAND_MEMBERS, store_key=scope.store_key, tier_key=scope.tier_key
    )
    _day, deciles = selectors.rollup_snapshot(
        metric=metrics.CHURN_DECILE_MEMBERS, store_key=scope.store_key, tier_key=scope.tier_key
    )
    scored = sum(bands.values(), Decimal(0))
    rows: list[list[Cell]] = [
        [label, _count(bands[band]), _percent(bands[band], scored)]
        for band, label in RiskBand.choices
        if band in bands
    ]
    decile_rows: list[list[Cell]] = []
    for decile in range(10):
        if str(decile) in deciles:
            label = _("Probability %(low)s–%(high)s%%") % {
                "low": decile * 10,
                "high": decile * 10 + 10,
            }
            count = deciles[str(decile)]
            decile_rows.append([label, _count(count), _percent(count, sum(deciles.values()))])
    option = _base(
        categories=[r[0] for r in decile_rows],
        series=[_series(_("Members"), "bar", _column(decile_rows, 1))],
    )
    option["xAxis"]["axisLabel"] = {"interval": 0, "rotate": 45, "fontSize": 9}
    return Panel(
        name="churn",
        option=option,
        table=Table([_("Group"), _("Members"), _("Share (%)")], rows + decile_rows),
        note=_(
            "The probability of no purchase in the next %(days)s days, by risk band and by tenth."
        )
        % {"days": settings.CHURN_HORIZON_DAYS},
        as_of=as_of,
    )


# name → (title, builder), in the order the dashboard shows them; a panel's title is here.
PANELS: dict[str, tuple[Any, Callable[[Scope], Panel]]] = {
    "members": (gettext_lazy("Members: total, new and active"), members_panel),
    "tier-distribution": (gettext_lazy("Members per tier"), tier_distribution_panel),
    "tier-migration": (gettext_lazy("Tier changes per month"), tier_migration_panel),
    "revenue": (gettext_lazy("Revenue from members"), revenue_panel),
    "frequency": (gettext_lazy("Purchase frequency and repurchase rate"), frequency_panel),
    "points": (gettext_lazy("Points issued, redeemed and expired"), points_panel),
    "liability": (gettext_lazy("Points liability and breakage by issue month"), liability_panel),
    "redemption-curve": (
        gettext_lazy("Redeemed share by months since issue"),
        redemption_curve_panel,
    ),
    "stages": (gettext_lazy("Lifecycle stages"), stages_panel),
    "rfm": (gettext_lazy("RFM grid: members and share of revenue"), rfm_panel),
    "cohorts": (gettext_lazy("Retention by enrolment month"), cohorts_panel),
    "churn": (gettext_lazy("Churn risk"), churn_panel),
}


def panel_build(*, name: str, scope: Scope) -> Panel:
    """The panel `name` (a key of PANELS) for `scope`; KeyError for an unknown name."""
    return PANELS[name][1](scope)
