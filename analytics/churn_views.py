"""The churn model card in the back office: how good the model that scores members is."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from members.permissions import staff_required

from .charts import Table
from .churn.selectors import ModelCard, churn_model_card, churn_model_latest


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.1f}"


def calibration_chart(*, card: ModelCard) -> tuple[dict[str, Any], Table]:
    """Predicted against observed churn per probability bin, one line per scorer, over the
    diagonal of a perfectly calibrated score; and the same figures as a table."""
    series: list[dict[str, Any]] = [
        {
            "name": _("Perfect calibration"),
            "type": "line",
            "data": [[0, 0], [100, 100]],
            "symbol": "none",
            "lineStyle": {"type": "dashed", "width": 1},
            "color": "#888888",
        }
    ]
    headers = [_("Predicted probability")]
    for index, (_key, label) in enumerate(card.scorers):
        points = [
            [round(row.cells[index][0] * 100, 1), round(row.cells[index][1] * 100, 1)]
            for row in card.calibration
            if row.cells[index] is not None
        ]
        if points:
            series.append({"name": str(label), "type": "line", "data": points, "symbolSize": 7})
        headers.append(str(label))
    rows = []
    for row in card.calibration:
        cells: list[Any] = [f"{row.low * 100:.0f}–{row.high * 100:.0f}%"]
        for cell in row.cells:
            # One cell per scorer, so the table keeps four columns on a phone.
            cells.append(
                None
                if cell is None
                else _("predicted %(predicted)s%%, observed %(observed)s%%, %(count)s members")
                % {
                    "predicted": _percent(cell[0]),
                    "observed": _percent(cell[1]),
                    "count": cell[2],
                }
            )
        rows.append(cells)
    axis = {"type": "value", "min": 0, "max": 100, "axisLabel": {"formatter": "{value}%"}}
    option = {
        "animation": False,
        "tooltip": {"trigger": "item"},
        "legend": {"top": 0, "type": "scroll"},
        "grid": {"left": 28, "right": 16, "top": 40, "bottom": 32, "containLabel": True},
        "xAxis": {
            **axis,
            "name": _("Predicted"),
            "nameLocation": "middle",
            "nameGap": 24,
        },
        "yAxis": {
            **axis,
            "name": _("Observed"),
            "nameLocation": "middle",
            "nameGap": 44,
        },
        "series": series,
    }
    return option, Table(headers, rows)


@require_GET
@staff_required("analytics.view_dashboard")
def churn_model_view(request: HttpRequest) -> HttpResponse:
    model = churn_model_latest()
    context: dict[str, Any] = {"model": model, "horizon": settings.CHURN_HORIZON_DAYS}
    if model is not None:
        card = churn_model_card(model=model)
        option, table = calibration_chart(card=card)
        context.update(card=card, calibration_option=option, calibration_table=table)
    return render(request, "analytics/churn_model.html", context)
