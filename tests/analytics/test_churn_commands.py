"""manage.py churn_train and churn_score: one JSON line, one CSV file, clear errors."""

from __future__ import annotations

import csv
import datetime
import io
import json

import pytest
from django.core.management import CommandError, call_command

from analytics.models import ChurnModel
from members.models import Member

from .churn_history import history_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    return history_build()


def _train(as_of: str) -> dict:
    out = io.StringIO()
    call_command("churn_train", "--as-of", as_of, stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_churn_train_prints_the_model_card_as_one_json_line(history):
    card = _train("2026-06-30")

    assert card["kind"] == "model"
    assert card["as_of"] == "2026-06-30"
    assert card["horizon_days"] == 90
    assert card["holdout_cutoff"] == "2026-04-01"
    assert len(card["training_cutoffs"]) == 6
    for scorer in ("model", "recency", "frequency_recency"):
        assert set(card["metrics"][scorer]) == {"auc", "pr_auc", "brier", "top_decile_lift"}
    assert {"calibration", "features", "counts", "reason", "recency_rule"} <= set(card)


def test_churn_train_twice_for_a_day_keeps_one_model(history):
    first = _train("2026-06-30")
    second = _train("2026-06-30")

    assert ChurnModel.objects.count() == 1
    assert first["metrics"] == second["metrics"]


def test_churn_score_writes_a_row_per_member_with_probability_and_band(history, tmp_path):
    output = tmp_path / "scores.csv"
    call_command(
        "churn_score", "--as-of", "2026-06-30", "--output", str(output), stdout=io.StringIO()
    )

    text = output.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")  # Excel opens it as UTF-8
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == ["member_no", "probability", "band"]
    body = rows[1:]
    open_members = set(Member.objects.values_list("member_no", flat=True))
    assert len(body) == len(open_members) == 500
    assert {member_no for member_no, _p, _b in body} == open_members
    for _member_no, probability, band in body:
        p = float(probability)
        assert 0 <= p <= 1
        assert band == ("high" if p >= 0.7 else "medium" if p >= 0.4 else "low")
    assert {band for _m, _p, band in body} == {"high", "medium", "low"}

    again = tmp_path / "again.csv"
    call_command(
        "churn_score", "--as-of", "2026-06-30", "--output", str(again), stdout=io.StringIO()
    )
    assert again.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["churn_train", "--as-of", "2026-02-30"], "--as-of must be YYYY-MM-DD"),
        (["churn_train", "--as-of", "yesterday"], "--as-of must be YYYY-MM-DD"),
        (["churn_train"], "--as-of YYYY-MM-DD is required"),
        (["churn_score", "--as-of", "30/06/2026", "--output", "x.csv"], "must be YYYY-MM-DD"),
        (["churn_score", "--as-of", "2026-06-30"], "--output FILE.csv is required"),
        (
            ["churn_score", "--as-of", "2026-06-30", "--output", "/no/such/dir/x.csv"],
            "no directory",
        ),
    ],
)
def test_bad_arguments_are_clear_errors(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command(*arguments)


def test_a_day_in_the_future_is_refused(db):
    future = (datetime.date.today() + datetime.timedelta(days=3)).isoformat()
    with pytest.raises(CommandError, match="in the future"):
        call_command("churn_train", "--as-of", future)
