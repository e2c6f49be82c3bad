"""Churn scoring: every open member as of a day, into their figures, blind to later data."""

from __future__ import annotations

import datetime

import pytest
from django.test import override_settings

from analytics.churn.services import churn_score, churn_train
from analytics.figures import member_figures_write
from analytics.models import ChurnModel, MemberFigures
from members.models import Member

from .churn_history import at, history_build, member_make, purchase_make, return_make

pytestmark = pytest.mark.django_db

AS_OF = datetime.date(2026, 6, 30)


@pytest.fixture
def history():
    history = history_build()
    member_figures_write(as_of=AS_OF)
    return history


def _stored() -> dict[int, tuple[float | None, str]]:
    return dict(
        (member_id, (probability, band))
        for member_id, probability, band in MemberFigures.objects.values_list(
            "member_id", "churn_probability", "churn_band"
        )
    )


def test_scoring_writes_a_probability_and_its_band_into_every_member_s_figures(history):
    result = churn_score(as_of=AS_OF)

    assert result.trained  # no model yet: one was trained as of the day first
    assert result.model.as_of == AS_OF
    assert len(result.scores) == 500
    assert result.updated == 500
    for probability, band in _stored().values():
        assert 0 <= probability <= 1
        expected = "high" if probability >= 0.7 else "medium" if probability >= 0.4 else "low"
        assert band == expected


@override_settings(CHURN_BAND_HIGH=0.9, CHURN_BAND_MEDIUM=0.05)
def test_the_bands_follow_the_thresholds_in_settings(history):
    churn_score(as_of=AS_OF)
    for probability, band in _stored().values():
        expected = "high" if probability >= 0.9 else "medium" if probability >= 0.05 else "low"
        assert band == expected


def test_scores_as_of_a_day_do_not_change_when_later_purchases_and_returns_arrive(history):
    first = churn_score(as_of=AS_OF)
    before = _stored()
    # A month later: everyone buys again, some return things, a new member joins.
    later = at(AS_OF + datetime.timedelta(days=3))
    for person in history.members[:200]:
        bought = purchase_make(member=person, store=history.store, when=later, amount="99.00")
        if person.pk % 3 == 0:
            return_make(purchase=bought, when=later + datetime.timedelta(days=1), amount="50.00")
    member_make(enrolled=AS_OF + datetime.timedelta(days=2), store=history.store)
    ChurnModel.objects.all().delete()  # and the model is trained again from scratch

    second = churn_score(as_of=AS_OF)

    assert second.trained
    assert second.scores.equals(first.scores)
    assert _stored() == before


def test_scoring_a_day_again_writes_the_same_scores(history):
    churn_score(as_of=AS_OF)
    before = _stored()
    again = churn_score(as_of=AS_OF)

    assert not again.trained
    assert ChurnModel.objects.count() == 1
    assert _stored() == before


def test_the_newest_model_trained_on_or_before_the_day_scores_it(history):
    older = churn_train(as_of=AS_OF - datetime.timedelta(days=10))
    churn_train(as_of=AS_OF + datetime.timedelta(days=1))  # later: not allowed to score

    result = churn_score(as_of=AS_OF)

    assert result.model.pk == older.pk
    assert not result.trained


def test_a_member_closed_since_has_the_score_emptied(history):
    churn_score(as_of=AS_OF)
    gone = history.members[0]
    Member.objects.filter(pk=gone.pk).update(
        status=Member.Status.ANONYMISED, closed_at=at(AS_OF + datetime.timedelta(days=5))
    )

    result = churn_score(as_of=AS_OF + datetime.timedelta(days=10))

    assert gone.pk not in set(result.scores["member_id"])
    figures = MemberFigures.objects.filter(member=gone).first()
    if figures is not None:  # the analytics job may not have removed the row yet
        assert figures.churn_probability is None
        assert figures.churn_band == ""


def test_the_recency_rule_scores_when_it_stands_in(history, monkeypatch):
    from analytics.churn import services

    monkeypatch.setattr(services, "MIN_TRAIN_ROWS", 10**6)
    result = churn_score(as_of=AS_OF)

    assert result.model.kind == ChurnModel.Kind.RECENCY_RULE
    scores = result.scores.set_index("member_id")["probability"]
    # More days since the last purchase never means a lower probability.
    frame = services.churn_features(cutoff=AS_OF).set_index("member_id")
    ordered = scores.loc[frame["recency_days"].sort_values(kind="stable").index]
    assert ordered.is_monotonic_increasing


def test_a_day_before_anyone_enrolled_scores_nobody(history):
    result = churn_score(as_of=datetime.date(2023, 12, 31))

    assert len(result.scores) == 0
    assert result.updated == 0
    assert result.model.kind == ChurnModel.Kind.RECENCY_RULE


def test_a_day_scored_by_a_trained_model_with_nobody_open_scores_nobody(history):
    churn_train(as_of=AS_OF)
    Member.objects.update(status=Member.Status.ANONYMISED, closed_at=at(AS_OF))

    result = churn_score(as_of=AS_OF + datetime.timedelta(days=1))

    assert result.model.kind == ChurnModel.Kind.MODEL
    assert len(result.scores) == 0
    assert not MemberFigures.objects.filter(churn_probability__isnull=False).exists()
