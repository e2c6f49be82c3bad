"""The nightly churn scoring job (03:00, after the analytics job has written the figures)."""

from __future__ import annotations

import datetime
import time
from typing import Any

from django.conf import settings
from django.db import connection

from analytics import metrics
from analytics.figures import figures_day
from analytics.rollups import member_snapshot_rollup_write

from .selectors import churn_model_for
from .services import churn_score, churn_train


def _decile_sql() -> str:
    # Probability 0–0.1 is decile "0" … 0.9–1 is "9" (1 itself joins "9"); PostgreSQL
    # rounds a float cast to integer, SQLite truncates.
    tenths = "churn_probability * 10"
    whole = f"FLOOR({tenths})" if connection.vendor == "postgresql" else tenths
    return f"CASE WHEN churn_probability >= 1 THEN 9 ELSE CAST({whole} AS INTEGER) END"


def churn_scoring_job(business_date: datetime.date) -> tuple[int, dict[str, Any]]:
    """Score every member as of the business day, retraining first when the newest model
    is CHURN_RETRAIN_DAYS old or more (weekly by default); then the churn roll-ups.

    As of the same day as the analytics job's figures (MemberFigures.as_of): the day before
    the business date, the last complete one.
    Idempotent: a second run for the day finds the model it trained and writes the same
    scores.
    """
    as_of = figures_day(business_date)
    newest = churn_model_for(as_of=as_of)
    retrained = newest is None or (as_of - newest.as_of).days >= settings.CHURN_RETRAIN_DAYS
    started = time.monotonic()
    if retrained:
        newest = churn_train(as_of=as_of)
    trained = time.monotonic()
    result = churn_score(as_of=as_of)
    scored = time.monotonic()
    rollup_rows = member_snapshot_rollup_write(
        metric=metrics.CHURN_BAND_MEMBERS,
        dim_sql="churn_band",
        as_of=as_of,
        where_sql="churn_band <> ''",
    )
    rollup_rows += member_snapshot_rollup_write(
        metric=metrics.CHURN_DECILE_MEMBERS,
        dim_sql=_decile_sql(),
        as_of=as_of,
        where_sql="churn_probability IS NOT NULL",
    )
    bands = result.band_counts()
    return result.updated, {
        "scored": len(result.scores),
        "figures_updated": result.updated,
        "model_as_of": result.model.as_of.isoformat(),
        "model_kind": result.model.kind,
        "retrained": retrained,
        "high": bands["high"],
        "medium": bands["medium"],
        "low": bands["low"],
        "rollup_rows": rollup_rows,
        # Apart, so a night that retrained is not read as slow scoring.
        "train_seconds": round(trained - started, 2),
        "score_seconds": round(scored - trained, 2),
    }
