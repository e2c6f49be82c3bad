"""Reads of the churn models: which one scores as of a day, and what the staff page shows."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.utils.functional import Promise
from django.utils.translation import gettext
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
    """The newest model trained on or before `as_of`: the one that scores as of that day.

    Read on the primary, replica or not: scoring decides by it whether to train first, and
    a replica may not have the model that training committed a moment ago."""
    models = ChurnModel.objects.using(DEFAULT_DB_ALIAS)
    return models.filter(as_of__lte=as_of).order_by("-as_of", "-id").first()


def churn_model_latest() -> ChurnModel | None:
    return ChurnModel.objects.order_by("-as_of", "-id").first()


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str | Promise
    values: list[float | None]  # one per scorer, in SCORERS order

    @property
    def cells(self) -> list[tuple[str | Promise, float | None]]:
        """(scorer, value) pairs: each cell knows its column's name (a phone's stacked table)."""
        return [(label, value) for (_key, label), value in zip(SCORERS, self.values, strict=True)]


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
    # Why the recency rule stands in, in the reader's language ("" for a trained model).
    reason: str


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
        reason=churn_reason_text(model=model),
    )


def churn_reason_text(*, model: ChurnModel) -> str:
    """Why the recency rule stands in, said from the card's reason code and figures."""
    if model.kind == ChurnModel.Kind.MODEL:
        return ""
    card = model.card or {}
    code = card.get("reason_code")
    figures = card.get("reason_figures") or {}
    try:
        if code == "holdout":
            return (
                gettext(
                    "there is too little history: the held-out cut-off %(cutoff)s has "
                    "%(members)s members, %(churned)s of them churned; at least %(min_members)s "
                    "members, with %(min_class)s churned and %(min_class)s retained in each half, "
                    "are needed."
                )
                % figures
            )
        if code == "training":
            return (
                gettext(
                    "there is too little history: %(cutoffs)s closed training cut-offs with "
                    "%(rows)s member rows, %(churned)s of them churned; at least %(min_cutoffs)s "
                    "cut-offs, %(min_rows)s rows and %(min_class)s churned and retained are needed."
                )
                % figures
            )
        if code == "not_better":
            return (
                gettext(
                    "the trained model's AUC on the held-out cut-off (%(model_auc)s) does not beat "
                    "the recency rule's (%(recency_auc)s)."
                )
                % figures
            )
    except (KeyError, TypeError, ValueError):
        pass  # a card written before its figures were kept: say what it says
    return model.reason
