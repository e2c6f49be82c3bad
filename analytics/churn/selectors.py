"""Reads of the churn models: which one scores as of a day, and what the staff page shows."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from analytics.models import ChurnModel

# The three scorers of the model card, in the order the page shows them.
SCORERS: tuple[tuple[str, Promise], ...] = (
    ("model", _("Model")),
    ("recency", _("Recency rule")),
    ("frequency_recency", _("Frequency/recency rule")),
)
METRICS: tuple[tuple[str, Promise], ...] = (
    ("auc", _("AUC")),
    ("pr_auc", _("PR-AUC")),
    ("brier", _("Brier score")),
    ("top_decile_lift", _("Top-decile lift")),
)


def churn_model_for(*, as_of: datetime.date) -> ChurnModel | None:
    """The newest model trained on or before `as_of`: the one that scores as of that day."""
    return ChurnModel.objects.filter(as_of__lte=as_of).order_by("-as_of", "-id").first()


def churn_model_latest() -> ChurnModel | None:
    return ChurnModel.objects.order_by("-as_of", "-id").first()


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str | Promise
    values: list[float | None]  # one per scorer, in SCORERS order


@dataclass(frozen=True)
class CalibrationRow:
    low: float
    high: float
    # (predicted, observed, count) per scorer in SCORERS order; None where the bin is empty.
    cells: list[tuple[float, float, int] | None]


@dataclass(frozen=True)
class ModelCard:
    model: ChurnModel
    scorers: list[tuple[str, str | Promise]]
    metrics: list[MetricRow]
    calibration: list[CalibrationRow]
    training_cutoffs: list[str]
    holdout_cutoff: str | None
    counts: dict[str, Any]
    evaluated: bool


def churn_model_card(*, model: ChurnModel) -> ModelCard:
    """The card's figures as rows for the page: metrics side by side, calibration by bin."""
    card = model.card or {}
    figures = card.get("metrics") or {}
    metrics = [
        MetricRow(
            key=key, label=label, values=[(figures.get(s) or {}).get(key) for s, _l in SCORERS]
        )
        for key, label in METRICS
    ]
    curves = card.get("calibration") or {}
    bins: dict[float, list[tuple[float, float, int] | None]] = {}
    highs: dict[float, float] = {}
    for index, (scorer, _label) in enumerate(SCORERS):
        for row in curves.get(scorer) or []:
            cells = bins.setdefault(row["low"], [None] * len(SCORERS))
            cells[index] = (row["predicted"], row["observed"], row["count"])
            highs[row["low"]] = row["high"]
    calibration = [
        CalibrationRow(low=low, high=highs[low], cells=bins[low]) for low in sorted(bins)
    ]
    return ModelCard(
        model=model,
        scorers=list(SCORERS),
        metrics=metrics,
        calibration=calibration,
        training_cutoffs=card.get("training_cutoffs") or [],
        holdout_cutoff=card.get("holdout_cutoff"),
        counts=card.get("counts") or {},
        evaluated=bool(figures),
    )
