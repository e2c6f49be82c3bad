"""Churn training: only the past, a held-out cut-off, and the recency rule when it must."""

from __future__ import annotations

import datetime

import pytest

from analytics.churn.services import churn_score, churn_train
from analytics.models import ChurnModel
from core.db import REPLICA
from tests.core.test_db_router import queries_on, replica, touching  # noqa: F401 (fixture)

from .churn_history import history_build

pytestmark = pytest.mark.django_db

AS_OF = datetime.date(2026, 6, 30)


@pytest.fixture
def history():
    return history_build()


def test_the_model_beats_the_recency_rule_on_the_held_out_cut_off(history):
    model = churn_train(as_of=AS_OF)

    assert model.kind == ChurnModel.Kind.MODEL, model.reason
    assert model.reason == ""
    assert model.artifact
    card = model.card
    figures = card["metrics"]
    assert figures["model"]["auc"] > figures["recency"]["auc"]
    # Sane: well above chance, below the "too good, look for a leak" line of ANALYTICS.md.
    assert 0.7 < figures["model"]["auc"] < 0.99
    for scorer in ("model", "recency", "frequency_recency"):
        assert set(figures[scorer]) == {"auc", "pr_auc", "brier", "top_decile_lift"}
        assert 0 <= figures[scorer]["brier"] <= 1
        assert figures[scorer]["top_decile_lift"] >= 1
        assert card["calibration"][scorer]
    # The held-out cut-off's label window closed by the as-of day; every training cut-off's
    # label window closed by the held-out cut-off.
    assert card["holdout_cutoff"] == "2026-04-01"
    assert card["training_cutoffs"][0] == "2026-01-01"
    assert len(card["training_cutoffs"]) == 6
    assert all(cut <= "2026-01-01" for cut in card["training_cutoffs"])
    assert card["counts"]["calibration"] + card["counts"]["evaluation"] == 500


def test_the_calibration_plot_has_predicted_and_observed_per_bin_from_the_measured_half(history):
    card = churn_train(as_of=AS_OF).card
    bins = card["calibration"]["model"]
    assert sum(row["count"] for row in bins) == card["counts"]["evaluation"]
    for row in bins:
        assert row["low"] <= row["predicted"] <= row["high"]
        assert 0 <= row["observed"] <= 1


def test_training_a_day_again_replaces_its_model(history):
    first = churn_train(as_of=AS_OF)
    second = churn_train(as_of=AS_OF)

    assert ChurnModel.objects.count() == 1
    assert second.pk == first.pk
    assert second.card["metrics"] == first.card["metrics"]


def test_with_too_little_history_the_recency_rule_stands_in_and_says_why(history):
    # Three months after the first enrolments: no label window has closed yet.
    model = churn_train(as_of=datetime.date(2024, 3, 31))

    assert model.kind == ChurnModel.Kind.RECENCY_RULE
    assert model.reason.startswith("too little history")
    assert model.artifact == b""
    assert model.card["recency_rule"] == {"rule": "days / (days + horizon)"}


def test_with_a_held_out_cut_off_but_too_few_training_rows_the_rule_uses_its_churn_rates(
    history, monkeypatch
):
    from analytics.churn import services

    # The held-out cut-off has its 500 members; the training cut-offs hold 3,000 rows,
    # fewer than a (raised) minimum.
    monkeypatch.setattr(services, "MIN_TRAIN_ROWS", 10_000)
    model = churn_train(as_of=AS_OF)

    assert model.kind == ChurnModel.Kind.RECENCY_RULE
    assert model.reason.startswith("too little history: 6 closed training cut-offs")
    mapping = model.card["recency_rule"]["map"]
    # The observed churn rate by days since the last purchase never falls as days grow.
    assert mapping["probability"] == sorted(mapping["probability"])
    assert mapping["probability"][0] < 0.2 < 0.8 < mapping["probability"][-1]
    assert "recency" in model.card["metrics"]
    assert "model" not in model.card["metrics"]


def test_a_model_that_does_not_beat_the_recency_rule_is_not_used(history, monkeypatch):
    from analytics.churn import modelling

    # A classifier that learnt nothing: every member gets the same score.
    monkeypatch.setattr(
        modelling, "classifier_raw", lambda *, model, frame: [0.5] * len(frame), raising=True
    )
    model = churn_train(as_of=AS_OF)

    assert model.kind == ChurnModel.Kind.RECENCY_RULE
    assert "does not beat the recency rule" in model.reason
    assert model.card["metrics"]["model"]["auc"] == 0.5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reading_the_cut_offs_on_two_connections_trains_the_same_model(monkeypatch):
    from analytics.churn import services

    history_build()
    side_by_side = churn_train(as_of=AS_OF).card
    monkeypatch.setattr(services, "FEATURE_WORKERS", 1)
    one_by_one = churn_train(as_of=AS_OF).card

    assert side_by_side["training_cutoffs"] == one_by_one["training_cutoffs"]
    assert side_by_side["counts"] == one_by_one["counts"]
    assert side_by_side["metrics"] == one_by_one["metrics"]


@pytest.mark.usefixtures("replica")
@pytest.mark.django_db(transaction=True, databases=["default", REPLICA])
class TestWithAReplica:
    def test_training_reads_the_history_on_the_replica_and_writes_the_model_on_the_primary(
        self,
    ):
        history_build(members=300)
        with queries_on("default", REPLICA) as ran:
            churn_train(as_of=AS_OF)

        for table in ("points_purchase", "points_return", "points_ledgertransaction"):
            assert touching(ran[REPLICA], table)
            assert not touching(ran["default"], table)
        written = [sql.split()[0] for sql in touching(ran["default"], "analytics_churnmodel")]
        assert "insert" in written
        assert not touching(ran[REPLICA], "analytics_churnmodel")

    def test_scoring_finds_the_model_and_reads_the_history_on_the_primary(self):
        history_build(members=300)
        churn_train(as_of=AS_OF)
        with queries_on("default", REPLICA) as ran:
            result = churn_score(as_of=AS_OF)

        assert not result.trained  # the model just trained was found, replica or not
        assert touching(ran["default"], "analytics_churnmodel")
        assert touching(ran["default"], "points_purchase")
        assert ran[REPLICA] == []
