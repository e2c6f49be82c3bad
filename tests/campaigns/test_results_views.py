"""Who reads a campaign's results, who refreshes them, and the CSV (results_world.py)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
import time_machine

from campaigns.models import CampaignResult
from campaigns.result_views import campaign_results_context
from members.models import AuditEntry
from tests.campaigns.results_world import DAY, LAUNCH, build_world
from tests.conftest import make_role_user

AFTER = LAUNCH + 20 * DAY


@pytest.fixture
def world(db, settings):
    settings.ANALYTICS_POINT_VALUE = Decimal("0.01")
    settings.CAMPAIGN_EXPECTED_REDEMPTION = 0.7
    settings.CAMPAIGN_SMS_UNIT_PRICE = Decimal("0.05")
    settings.CAMPAIGN_EMAIL_UNIT_PRICE = Decimal("0.10")
    with time_machine.travel(AFTER, tick=False):
        yield build_world()


def login(client, role, *, stores=()):
    user = make_role_user(role, stores=stores)
    client.force_login(user)
    return user


def csv_rows(response) -> dict[str, list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return {row[0]: row[1:] for row in csv.reader(io.StringIO(text.lstrip("\ufeff")))}


def url(world, tail=""):
    return f"/staff/campaigns/{world.campaign.pk}/results{tail}"


@pytest.mark.parametrize("role", ["marketer", "administrator", "auditor"])
def test_back_office_roles_for_every_store_see_all_members(client, world, role):
    login(client, role)
    page = client.get(url(world, "/"))
    assert page.status_code == 200
    html = page.content.decode()
    # 6 treated and 4 held out; the cost of all stores: ¥24.60; return on cost 0.81.
    assert "¥24.60" in html
    assert "0.81" in html
    assert 'type="application/json"' in html  # the chart's option, passed with json_script
    assert "<script>" not in html.replace('<script type="application/json"', "")


def test_a_manager_sees_their_stores_members_only(client, world):
    login(client, "store_manager", stores=[world.store_a])
    html = client.get(url(world, "/")).content.decode()
    # Store A: cost ¥22.40 (not the ¥24.60 of all stores), and the page says whose.
    assert "¥22.40" in html
    assert "¥24.60" not in html
    rows = csv_rows(client.get(url(world, ".csv"), HTTP_ACCEPT_LANGUAGE="en"))
    assert rows["Members"][:2] == ["3", "2"]
    assert rows["Total cost (¥)"][0] == "22.40"


def test_a_manager_is_never_shown_the_stored_all_store_results(client, world):
    from campaigns.results import campaign_results_refresh

    campaign_results_refresh(campaign=world.campaign, now=AFTER)
    login(client, "store_manager", stores=[world.store_b])
    rows = csv_rows(client.get(url(world, ".csv"), HTTP_ACCEPT_LANGUAGE="en"))
    # Store B: t3, t4, t6 and c2, c4.
    assert rows["Members"][:2] == ["3", "2"]


def test_store_staff_of_no_store_see_no_members(client, world):
    user = login(client, "store_staff")
    context = campaign_results_context(campaign=world.campaign, user=user)
    figures = context["results"]["figures"]
    assert figures.treatment.members == 0 and figures.control.members == 0


def test_the_csv_holds_the_figures_and_is_audited(client, world):
    user = login(client, "marketer")
    response = client.get(url(world, ".csv"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert rows["Members"][:2] == ["6", "4"]
    assert rows["Conversions"][:2] == ["2", "2"]
    assert rows["Revenue (¥)"][:2] == ["170.0", "100.0"]
    assert rows["Total cost (¥)"][0] == "24.60"
    assert rows["Incremental revenue (¥)"][0] == "20.00"
    entry = AuditEntry.objects.get(action="campaign.results_export")
    assert entry.actor == user
    assert entry.target_id == str(world.campaign.pk)
    assert entry.details == {"stores": "all"}


def test_a_managers_export_is_audited_with_their_stores(client, world):
    login(client, "store_manager", stores=[world.store_a])
    client.get(url(world, ".csv"))
    entry = AuditEntry.objects.get(action="campaign.results_export")
    assert entry.details == {"stores": [world.store_a.pk]}


@pytest.mark.parametrize("role", ["marketer", "administrator"])
def test_marketers_and_administrators_refresh_the_stored_results(client, world, role):
    login(client, role)
    response = client.post(url(world, "/refresh/"))
    assert response.status_code == 302
    assert response["Location"] == url(world, "/")
    result = CampaignResult.objects.get(campaign=world.campaign)
    assert result.figures["cost"]["points_issued"] == 600
    assert result.computed_at == AFTER


def test_an_htmx_refresh_returns_the_panel(client, world):
    login(client, "marketer")
    response = client.post(url(world, "/refresh/"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card campaign-results"')
    assert "¥24.60" in html


@pytest.mark.parametrize("role", ["auditor", "store_manager", "store_staff"])
def test_other_roles_may_not_refresh(client, world, role):
    login(client, role, stores=[world.store_a])
    assert client.post(url(world, "/refresh/")).status_code == 403
    assert not CampaignResult.objects.exists()


def test_refresh_is_a_post(client, world):
    login(client, "marketer")
    assert client.get(url(world, "/refresh/")).status_code == 405


def test_the_refresh_button_is_offered_to_those_who_may_use_it(client, world):
    login(client, "marketer")
    assert "/refresh/" in client.get(url(world, "/")).content.decode()
    client.logout()
    login(client, "auditor")
    assert "/refresh/" not in client.get(url(world, "/")).content.decode()


def test_someone_without_the_permission_gets_nothing(client, world):
    from django.contrib.auth.models import Permission

    user = login(client, "marketer")
    user.groups.clear()
    user.user_permissions.add(Permission.objects.get(codename="use_backoffice"))
    assert client.get(url(world, "/")).status_code == 403
    assert client.get(url(world, ".csv")).status_code == 403
    assert campaign_results_context(campaign=world.campaign, user=user) == {
        "results_allowed": False
    }


def test_an_unknown_campaign_is_not_found(client, world):
    login(client, "marketer")
    assert client.get("/staff/campaigns/999999/results/").status_code == 404
    assert client.get("/staff/campaigns/999999/results.csv").status_code == 404


def test_the_page_states_the_window_and_the_cap(client, world):
    login(client, "marketer")
    html = client.get(url(world, "/"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "2026-03-02 10:00" in html and "2026-03-16 10:00" in html
    assert "14 days" in html
    assert "capped at percentile 100" in html
    assert "Newcombe" in html


def test_a_split_unlike_the_draw_is_flagged(client, world):
    # Drawn with a 1 % holdout but split 6 : 4: χ² = (4 − 0.1)²/0.1 + (6 − 9.9)²/9.9
    # = 152.1 + 1.536 = 153.6, p ≈ 3e-35 < 0.001.
    world.campaign.holdout_percent = Decimal(1)
    world.campaign.save()
    login(client, "marketer")
    html = client.get(url(world, "/"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'role="alert"' in html
    assert "Sample-ratio check failed" in html
    world.campaign.holdout_percent = Decimal(40)  # 6 : 4 is what a 40 % holdout expects
    world.campaign.save()
    html = client.get(url(world, "/"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Sample-ratio check failed" not in html


def test_store_staff_cannot_open_a_campaign_that_reached_none_of_their_stores(client, world):
    from members.models import Store

    elsewhere = Store.objects.create(code="ZZ999", name="别处店", city="成都")
    login(client, "store_staff", stores=[elsewhere])
    assert client.get(url(world, "/")).status_code == 404
    assert client.get(url(world, ".csv")).status_code == 404
    assert not AuditEntry.objects.filter(action="campaign.results_export").exists()
