"""The churn model card at /staff/analytics/model/: for marketers, not for store staff."""

from __future__ import annotations

import datetime
import json

import pytest
from django.conf import settings
from django.urls import reverse

from analytics.churn.services import churn_train

from .churn_history import history_build

pytestmark = [pytest.mark.django_db]

URL = "/staff/analytics/model/"


@pytest.fixture
def marketer_client(client, role_user):
    client.force_login(role_user("marketer"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_the_page_has_its_url_name():
    assert reverse("staff:analytics-model") == URL


def test_store_staff_may_not_read_the_model_card(staff_client):
    assert staff_client.get(URL).status_code == 403


def test_a_marketer_reads_the_model_beside_both_baselines_with_a_calibration_plot(
    marketer_client,
):
    history_build()
    model = churn_train(as_of=datetime.date(2026, 6, 30))

    response = marketer_client.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Trained model" in page
    assert "2026-06-30" in page  # trained as of
    assert "2026-04-01" in page  # the held-out cut-off
    for heading in ("Model", "Recency rule", "Frequency/recency rule"):
        assert f'<th scope="col">{heading}</th>' in page
    for figure in ("AUC", "PR-AUC", "Brier score", "Top-decile lift"):
        assert f'<th scope="row">{figure}</th>' in page
    auc = model.card["metrics"]["model"]["auc"]
    assert f"{auc:.3f}" in page
    # The calibration plot: its option as data, and its table view.
    option = json.loads(
        page.split('id="churn-calibration-option" type="application/json">')[1].split("</script>")[
            0
        ]
    )
    names = [series["name"] for series in option["series"]]
    assert names == ["Perfect calibration", "Model", "Recency rule", "Frequency/recency rule"]
    assert "Table: Calibration: predicted against observed churn" in page


def test_the_page_says_why_the_recency_rule_stands_in(marketer_client):
    history_build(members=50)
    churn_train(as_of=datetime.date(2026, 6, 30))

    page = marketer_client.get(URL).content.decode()

    assert "Recency rule" in page
    assert "stands in because there is too little history" in page


def test_before_any_training_the_page_says_there_is_no_model_yet(marketer_client):
    response = marketer_client.get(URL)

    assert response.status_code == 200
    assert "No churn model has been trained yet" in response.content.decode()
