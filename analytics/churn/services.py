"""Training and scoring: `churn_train` stores a ChurnModel, `churn_score` writes the scores.

Training uses only the past (ANALYTICS.md, "Churn model"). As of day D with horizon H:
- the held-out cut-off is D − H, the latest whose label window (D − H, D] has closed;
- the training cut-offs are monthly, from D − 2H back: their label windows close by the
  held-out cut-off, so no training label peeks into the held-out label window;
- the classifier trains on the training cut-offs; the held-out members are split in two
  halves by member id: one calibrates (isotonic), the other measures the model and both
  baselines, so every published figure comes from members that shaped nothing it shows.
The recency rule stands in — and says why in `reason` — when there is too little history
(too few closed cut-offs, members or churned / retained members) or when the model does
not beat it on AUC.
"""

from __future__ import annotations

import datetime
import io
import logging
import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics.figures import day_end, open_members_where, open_statuses
from analytics.models import ChurnModel, MemberFigures, RiskBand
from analytics.sql import adapted
from core.bulk import rows_update, use_copy
from core.db import analytics_read_alias
from core.jobs import on_connections
from tiers.selectors import add_months

from . import modelling
from .features import FEATURES, churn_features, eligible_count, sample_for
from .selectors import churn_model_for

logger = logging.getLogger(__name__)

# Monthly training cut-offs, newest first, at most this many.
TRAIN_CUTOFFS = 6
# Members read per cut-off: about this many (a slice of the members by id), so training
# a million members reads and fits ~7 × 100k rows, not 7 million.
SAMPLE_PER_CUTOFF = 100_000
# Too little history below these: the recency rule stands in.
MIN_TRAIN_CUTOFFS = 2
MIN_TRAIN_ROWS = 300
MIN_HOLDOUT_ROWS = 200
MIN_CLASS = 20  # churned and retained members, each, in every part used
# Scores written per statement.
WRITE_BATCH = 50_000
# Connections reading the training cut-offs at once (PostgreSQL; one elsewhere): the two
# cores of a small machine.
FEATURE_WORKERS = 2


class ChurnError(ValueError):
    """A churn request that cannot be served (a date out of range)."""


def _check_date(as_of: datetime.date) -> None:
    # A day in the future is allowed here: the nightly chain may be run ahead for a date
    # (tests, back-fills); the commands refuse one, where it is a typing mistake.
    if as_of.year < 1990:
        raise ChurnError(f"as of {as_of.isoformat()} is before any data this system can hold")


@dataclass
class _Evidence:
    """What training found, for the card and the decision."""

    card: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    # The reason as a code and its figures, for the staff page to say it in its language.
    reason_code: str = ""
    reason_figures: dict[str, Any] = field(default_factory=dict)
    recency_map: dict[str, list[float]] | None = None
    artifact: bytes = b""


def churn_train(*, as_of: datetime.date) -> ChurnModel:
    """Train on data on or before `as_of`; store (or replace) the ChurnModel of that day."""
    _check_date(as_of)
    started = time.monotonic()
    horizon = settings.CHURN_HORIZON_DAYS
    holdout_cutoff = as_of - datetime.timedelta(days=horizon)
    first_training = holdout_cutoff - datetime.timedelta(days=horizon)
    training_cutoffs = [add_months(first_training, -k) for k in range(TRAIN_CUTOFFS)]
    evidence = _Evidence(
        card={
            "as_of": as_of.isoformat(),
            "horizon_days": horizon,
            "holdout_cutoff": holdout_cutoff.isoformat(),
            "training_cutoffs": [],
            "features": list(FEATURES),
            "counts": {},
            "metrics": {},
            "calibration": {},
        }
    )
    _evaluate(
        evidence=evidence,
        # Training reads years of purchases and the ledger, weeks in the past: a replica's
        # few seconds of lag change nothing, and the scans leave the primary to the tills.
        using=analytics_read_alias(),
        holdout_cutoff=holdout_cutoff,
        training_cutoffs=training_cutoffs,
        horizon=horizon,
    )
    kind = ChurnModel.Kind.RECENCY_RULE if evidence.reason else ChurnModel.Kind.MODEL
    card = evidence.card
    card["kind"] = kind.value
    card["reason"] = evidence.reason
    card["reason_code"] = evidence.reason_code
    card["reason_figures"] = evidence.reason_figures
    card["recency_rule"] = (
        {"map": evidence.recency_map}
        if evidence.recency_map
        else {"rule": "days / (days + horizon)"}
    )
    card["seconds"] = round(time.monotonic() - started, 2)
    with transaction.atomic():
        # One model per as-of day: training the day again replaces it.
        model, _created = ChurnModel.objects.update_or_create(
            as_of=as_of,
            defaults={
                "kind": kind,
                "reason": evidence.reason[:200],
                "horizon_days": horizon,
                "card": card,
                "artifact": evidence.artifact if kind == ChurnModel.Kind.MODEL else b"",
                "trained_at": timezone.now(),
            },
        )
    logger.info("churn model as of %s: %s %s", as_of, kind, evidence.reason)
    return model


def _class_counts(churned: np.ndarray) -> tuple[int, int]:
    positives = int(np.sum(churned))
    return positives, len(churned) - positives


def _evaluate(
    *,
    evidence: _Evidence,
    using: str,
    holdout_cutoff: datetime.date,
    training_cutoffs: list[datetime.date],
    horizon: int,
) -> None:
    card = evidence.card
    eligible = eligible_count(cutoff=holdout_cutoff, using=using)
    holdout = churn_features(
        cutoff=holdout_cutoff,
        horizon_days=horizon,
        sample=sample_for(eligible=eligible, size=SAMPLE_PER_CUTOFF, index=0),
        using=using,
    )
    calibrating = modelling.calibration_half(member_ids=holdout["member_id"])
    calibration, measured = holdout[calibrating], holdout[~calibrating]
    churned_c = calibration["churned"].to_numpy()
    churned_m = measured["churned"].to_numpy()
    card["counts"]["holdout"] = len(holdout)
    card["counts"]["holdout_churned"] = int(holdout["churned"].sum())
    card["counts"]["calibration"] = len(calibration)
    card["counts"]["evaluation"] = len(measured)
    if (
        len(holdout) < MIN_HOLDOUT_ROWS
        or min(*_class_counts(churned_c), *_class_counts(churned_m)) < MIN_CLASS
    ):
        evidence.reason = (
            f"too little history: the held-out cut-off {holdout_cutoff.isoformat()} has "
            f"{len(holdout)} members, {int(holdout['churned'].sum())} of them churned "
            f"(at least {MIN_HOLDOUT_ROWS} members and {MIN_CLASS} churned and retained in "
            "each half are needed)"
        )
        evidence.reason_code = "holdout"
        evidence.reason_figures = {
            "cutoff": holdout_cutoff.isoformat(),
            "members": len(holdout),
            "churned": int(holdout["churned"].sum()),
            "min_members": MIN_HOLDOUT_ROWS,
            "min_class": MIN_CLASS,
        }
        return

    # The baselines, on the same members: fitted on one half, measured on the other.
    baselines = {
        "recency": modelling.recency_score,
        "frequency_recency": modelling.frequency_recency_score,
    }
    for name, scorer in baselines.items():
        mapping = modelling.monotone_map_fit(score=scorer(frame=calibration), churned=churned_c)
        score = scorer(frame=measured)
        probability = modelling.monotone_map_apply(mapping=mapping, score=score)
        card["metrics"][name] = modelling.figures(
            churned=churned_m,
            score=score,
            probability=probability,
            member_ids=measured["member_id"].to_numpy(),
        )
        card["calibration"][name] = modelling.reliability(
            churned=churned_m, probability=probability
        )
        if name == "recency":
            evidence.recency_map = mapping

    reads = []
    for index, cutoff in enumerate(training_cutoffs, start=1):
        count = eligible_count(cutoff=cutoff, using=using)
        if not count:
            break  # nobody was enrolled yet: older cut-offs have no one either
        reads.append((cutoff, sample_for(eligible=count, size=SAMPLE_PER_CUTOFF, index=index)))
    frames: dict[datetime.date, pd.DataFrame] = {}

    def read(
        item: tuple[datetime.date, tuple[int, int] | None],
    ) -> tuple[datetime.date, pd.DataFrame]:
        cutoff, sample = item
        return cutoff, churn_features(
            cutoff=cutoff, horizon_days=horizon, sample=sample, using=using
        )

    # The cut-offs are read side by side on PostgreSQL (each scans the purchases and the
    # ledger once) and put back in the order of the cut-offs, whichever finishes first.
    on_connections(
        items=reads,
        work=read,
        workers=FEATURE_WORKERS,
        done=lambda result: frames.__setitem__(*result),
    )
    used = [cutoff.isoformat() for cutoff, _sample in reads]
    training_frames = [frames[cutoff] for cutoff, _sample in reads]
    card["training_cutoffs"] = used
    training = pd.concat(training_frames, ignore_index=True) if training_frames else pd.DataFrame()
    churned_t = training["churned"].to_numpy() if len(training) else np.array([], dtype=int)
    card["counts"]["training"] = len(training)
    card["counts"]["training_churned"] = int(churned_t.sum())
    if (
        len(used) < MIN_TRAIN_CUTOFFS
        or len(training) < MIN_TRAIN_ROWS
        or min(_class_counts(churned_t)) < MIN_CLASS
    ):
        evidence.reason = (
            f"too little history: {len(used)} closed training cut-offs with "
            f"{len(training)} member rows, {int(churned_t.sum())} churned (at least "
            f"{MIN_TRAIN_CUTOFFS} cut-offs, {MIN_TRAIN_ROWS} rows and {MIN_CLASS} churned and "
            "retained are needed)"
        )
        evidence.reason_code = "training"
        evidence.reason_figures = {
            "cutoffs": len(used),
            "rows": len(training),
            "churned": int(churned_t.sum()),
            "min_cutoffs": MIN_TRAIN_CUTOFFS,
            "min_rows": MIN_TRAIN_ROWS,
            "min_class": MIN_CLASS,
        }
        return

    classifier = modelling.classifier_fit(frame=training)
    calibrator = modelling.calibrator_fit(
        raw=modelling.classifier_raw(model=classifier, frame=calibration), churned=churned_c
    )
    raw = modelling.classifier_raw(model=classifier, frame=measured)
    probability = np.clip(calibrator.predict(raw), 0.0, 1.0)
    # AUC of the calibrated probability: what the scores written rank by. Isotonic
    # calibration joins close raw scores into ties, which can cost a little AUC.
    model_figures = modelling.figures(
        churned=churned_m,
        score=probability,
        probability=probability,
        member_ids=measured["member_id"].to_numpy(),
    )
    card["metrics"]["model"] = model_figures
    card["calibration"]["model"] = modelling.reliability(churned=churned_m, probability=probability)
    model_auc = model_figures["auc"]
    recency_auc = card["metrics"]["recency"]["auc"]
    if model_auc is None or recency_auc is None or model_auc <= recency_auc:
        evidence.reason = (
            f"the model's AUC on the held-out cut-off ({model_auc}) does not beat the "
            f"recency rule's ({recency_auc})"
        )
        evidence.reason_code = "not_better"
        evidence.reason_figures = {"model_auc": model_auc, "recency_auc": recency_auc}
        return
    buffer = io.BytesIO()
    pickle.dump(
        {
            "classifier": classifier,
            "calibrator": calibrator,
            "features": list(FEATURES),
            "sklearn": sklearn.__version__,
        },
        buffer,
    )
    evidence.artifact = buffer.getvalue()


def churn_probabilities(*, model: ChurnModel, frame: pd.DataFrame) -> np.ndarray:
    """The churn probability of every row of `frame` by `model` (or its recency rule)."""
    if frame.empty:
        return np.zeros(0)  # nobody to score (the classifier refuses an empty frame)
    if model.kind == ChurnModel.Kind.MODEL:
        # Our own artifact, written by churn_train into our own database.
        parts = pickle.loads(bytes(model.artifact))  # noqa: S301
        if list(parts["features"]) != list(FEATURES):
            raise ChurnError(
                f"the model of {model.as_of} was trained on other features; train it again"
            )
        raw = modelling.classifier_raw(model=parts["classifier"], frame=frame)
        probability = parts["calibrator"].predict(raw)
    else:
        days = modelling.recency_score(frame=frame)
        mapping = (model.card.get("recency_rule") or {}).get("map")
        if mapping:
            probability = modelling.monotone_map_apply(mapping=mapping, score=days)
        else:
            probability = modelling.no_history_probability(
                days=days, horizon_days=model.horizon_days
            )
    # Four decimals: the band is decided on the figure that is stored and shown.
    return np.round(np.clip(np.asarray(probability, dtype=float), 0.0, 1.0), 4)


def churn_bands(*, probabilities: np.ndarray) -> np.ndarray:
    return np.where(
        probabilities >= settings.CHURN_BAND_HIGH,
        RiskBand.HIGH.value,
        np.where(
            probabilities >= settings.CHURN_BAND_MEDIUM, RiskBand.MEDIUM.value, RiskBand.LOW.value
        ),
    )


@dataclass(frozen=True)
class ChurnScores:
    as_of: datetime.date
    model: ChurnModel
    trained: bool  # whether this call trained the model first
    # member_id, member_no, probability, band: one row per member scored.
    scores: pd.DataFrame
    updated: int  # MemberFigures rows written
    cleared: int  # MemberFigures rows of members no longer scored, emptied

    def band_counts(self) -> dict[str, int]:
        counts = self.scores["band"].value_counts()
        return {band.value: int(counts.get(band.value, 0)) for band in RiskBand}


def churn_score(*, as_of: datetime.date) -> ChurnScores:
    """Score every member enrolled on or before `as_of` and not closed on it.

    With the newest model trained as of that day or earlier (training one first if there
    is none); writes churn_probability and churn_band of the members' MemberFigures rows
    (the nightly analytics job makes those rows) and empties them for members no longer
    scored (closed, merged). Read only from data on or before `as_of`: the same scores
    whether or not later purchases exist.
    """
    _check_date(as_of)
    model = churn_model_for(as_of=as_of)
    trained = model is None
    if model is None:
        model = churn_train(as_of=as_of)
    frame = churn_features(cutoff=as_of)
    probabilities = churn_probabilities(model=model, frame=frame)
    scores = pd.DataFrame(
        {
            "member_id": frame["member_id"].to_numpy(dtype=np.int64),
            "member_no": frame["member_no"],
            "probability": probabilities,
            "band": churn_bands(probabilities=probabilities),
        }
    )
    with transaction.atomic():
        updated = _scores_write(scores)
        cleared = _stale_scores_clear(as_of=as_of)
    return ChurnScores(
        as_of=as_of, model=model, trained=trained, scores=scores, updated=updated, cleared=cleared
    )


def _scores_write(scores: pd.DataFrame) -> int:
    ids = scores["member_id"].tolist()
    probabilities = scores["probability"].tolist()
    bands = scores["band"].tolist()
    written = 0
    for start in range(0, len(ids), WRITE_BATCH):
        stop = start + WRITE_BATCH
        if use_copy():
            written += rows_update(
                MemberFigures,
                key="member_id",
                columns=[
                    ("member_id", "bigint"),
                    ("churn_probability", "double precision"),
                    ("churn_band", "text"),
                ],
                rows=list(
                    zip(ids[start:stop], probabilities[start:stop], bands[start:stop], strict=True)
                ),
            )
        else:
            # SQLite (the demo): bulk_update writes CASE WHEN per batch; rows that do not
            # exist are simply not matched.
            rows = [
                MemberFigures(member_id=member_id, churn_probability=probability, churn_band=band)
                for member_id, probability, band in zip(
                    ids[start:stop], probabilities[start:stop], bands[start:stop], strict=True
                )
            ]
            written += MemberFigures.objects.bulk_update(
                rows, ["churn_probability", "churn_band"], batch_size=500
            )
    return written


def _stale_scores_clear(*, as_of: datetime.date) -> int:
    """Empty the scores of members with figures who are not scored on the day (closed
    since the figures were written)."""
    params = {"cut": adapted({"cut": day_end(day=as_of)})["cut"], **open_statuses()}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE analytics_memberfigures SET churn_probability = NULL, churn_band = '' "  # noqa: S608
            "WHERE (churn_probability IS NOT NULL OR churn_band <> '') AND member_id NOT IN ("
            f"SELECT m.id FROM members_member m WHERE {open_members_where(end='cut')})",
            params,
        )
        return cursor.rowcount
