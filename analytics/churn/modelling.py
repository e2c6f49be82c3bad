"""The classifier, the two baselines and the model card's figures: pure functions on frames.

Baselines (ANALYTICS.md, "Churn model"), scored on the same members as the model:
- recency: the score is the days since the last purchase (days since enrolment for a member
  who never bought: the days they have gone without one);
- frequency/recency: the days since the last purchase ÷ the gap the member's last 365 days
  lead one to expect (365 ÷ orders in them, 365 with none): a member who buys weekly is
  late after two weeks, one who buys twice a year is not.
A baseline's probability is the observed churn rate of members with a similar score: an
isotonic (monotone) fit of churn on the score over the calibration half of the held-out
cut-off. With no held-out cut-off at all the recency rule is `days ÷ (days + horizon)`:
0 just after a purchase, 1/2 once a whole horizon has passed without one, towards 1 after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from .features import FEATURES

RELIABILITY_BINS = 10
TOP_SHARE = 0.10
# Below this many rows the boosting runs on one thread: OpenMP's threads cost more than
# they save on a small frame, and spin against every other process of a busy machine.
THREADED_ROWS = 50_000


def _threads(*, rows: int) -> threadpool_limits:
    return threadpool_limits(limits=None if rows >= THREADED_ROWS else 1, user_api="openmp")


def recency_score(*, frame: pd.DataFrame) -> np.ndarray:
    return frame["recency_days"].fillna(frame["tenure_days"]).to_numpy(dtype=float)


def frequency_recency_score(*, frame: pd.DataFrame) -> np.ndarray:
    expected_gap = 365.0 / frame["orders_365"].clip(lower=1.0)
    return (recency_score(frame=frame) / expected_gap.to_numpy(dtype=float)).astype(float)


def calibration_half(*, member_ids: pd.Series) -> np.ndarray:
    """True for the members of the held-out cut-off that calibrate, False for those that
    measure. Calibrating and measuring on the same members would flatter the Brier score
    and the reliability plot; the halves come from a hash of the member id, so they are
    the same on every run."""
    ids = member_ids.to_numpy(dtype=np.int64)
    mixed = (ids * 2654435761) % (2**32)  # Knuth's multiplicative hash
    return mixed < 2**31


def monotone_map_fit(*, score: np.ndarray, churned: np.ndarray) -> dict[str, list[float]]:
    """The observed churn rate by score, made non-decreasing (isotonic regression); kept
    as its breakpoints, so a recency rule needs no stored model."""
    fit = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    fit.fit(score, churned)
    return {
        "score": [float(x) for x in fit.X_thresholds_],
        "probability": [float(y) for y in fit.y_thresholds_],
    }


def monotone_map_apply(*, mapping: dict[str, list[float]], score: np.ndarray) -> np.ndarray:
    # np.interp clamps at both ends, as the fit's out_of_bounds="clip" does.
    return np.interp(score, mapping["score"], mapping["probability"])


def no_history_probability(*, days: np.ndarray, horizon_days: int) -> np.ndarray:
    return days / (days + float(horizon_days))


def classifier_fit(*, frame: pd.DataFrame) -> HistGradientBoostingClassifier:
    model = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=200,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping="auto",  # on above 10,000 rows, on a 10 % slice of the training rows
        random_state=0,  # the same data trains the same model: training is idempotent
    )
    with _threads(rows=len(frame)):
        model.fit(frame[list(FEATURES)].to_numpy(dtype=float), frame["churned"].to_numpy())
    return model


def classifier_raw(*, model: HistGradientBoostingClassifier, frame: pd.DataFrame) -> np.ndarray:
    with _threads(rows=len(frame)):
        return model.predict_proba(frame[list(FEATURES)].to_numpy(dtype=float))[:, 1]


def calibrator_fit(*, raw: np.ndarray, churned: np.ndarray) -> IsotonicRegression:
    fit = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    fit.fit(raw, churned)
    return fit


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def figures(
    *, churned: np.ndarray, score: np.ndarray, probability: np.ndarray, member_ids: Sequence[int]
) -> dict[str, Any]:
    """AUC and PR-AUC of the score (its ranking), Brier score of the probability, top-decile
    lift of the score: the churn rate among the 10 % scored highest ÷ the churn rate of all."""
    churned = np.asarray(churned, dtype=int)
    both_classes = 0 < churned.sum() < len(churned)
    # Highest score first; ties in member order, so the top decile is the same every run.
    order = np.lexsort((np.asarray(member_ids), -np.asarray(score)))
    top = order[: max(1, math.ceil(len(order) * TOP_SHARE))] if len(order) else order
    rate = churned.mean() if len(churned) else float("nan")
    return {
        "auc": _number(roc_auc_score(churned, score)) if both_classes else None,
        "pr_auc": _number(average_precision_score(churned, score)) if both_classes else None,
        "brier": _number(brier_score_loss(churned, probability)) if len(churned) else None,
        "top_decile_lift": _number(churned[top].mean() / rate) if rate else None,
    }


def reliability(*, churned: np.ndarray, probability: np.ndarray) -> list[dict[str, Any]]:
    """Predicted against observed churn in bins of predicted probability 0–0.1 … 0.9–1."""
    churned = np.asarray(churned, dtype=float)
    bins = np.minimum(
        (np.asarray(probability) * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1
    )
    rows = []
    for index in range(RELIABILITY_BINS):
        inside = bins == index
        count = int(inside.sum())
        if not count:
            continue
        rows.append(
            {
                "low": index / RELIABILITY_BINS,
                "high": (index + 1) / RELIABILITY_BINS,
                "count": count,
                "predicted": _number(float(np.mean(np.asarray(probability)[inside]))),
                "observed": _number(float(churned[inside].mean())),
            }
        )
    return rows
