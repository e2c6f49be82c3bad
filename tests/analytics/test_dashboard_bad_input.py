"""Hostile query strings get a clear answer, never a 500."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import make_role_user


@pytest.fixture
def marketer_client(client, db):
    client.force_login(make_role_user("marketer"))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/staff/analytics/?store=%C2%B2",
        "/staff/analytics/panel/revenue/?store=%C2%B2",
        "/staff/analytics/panel/revenue/?start=9999-01&end=9999-12",
        "/staff/analytics/panel/cohorts/csv/?start=0001-01&end=9999-12",
        "/staff/analytics/members/?kind=churned&month=9999-12",
    ],
)
def test_odd_filters_are_refused_in_words(marketer_client, url):
    response = marketer_client.get(url)
    # A bad filter is a 400 with the form's message, a bad link to a list a 404.
    assert response.status_code in (400, 403, 404), response.status_code


def test_churn_score_refuses_a_directory_as_its_output(db, tmp_path):
    with pytest.raises(CommandError, match="is a directory"):
        call_command("churn_score", "--as-of", "2026-01-01", "--output", str(tmp_path))
