"""The campaign page before launch (audience after each filter, cost, detectable uplift), the
launch confirmation, approval from the page, and the win-back link from the analytics alert."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings

from campaigns.models import Campaign, Segment
from members.models import AuditEntry
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory

from .campaign_pages_support import administrator, bonus_make, marketer, segment_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def members():
    return [MemberFactory(consent_sms=i < 4) for i in range(10)]


def test_before_launch_the_page_shows_the_funnel_the_cost_and_the_launch_button(client, members):
    user = marketer()
    client.force_login(user)
    campaign = bonus_make(actor=user, segment=segment_make(), send_sms=True)
    response = client.get(f"/staff/campaigns/{campaign.pk}/")
    preview = response.context["preview"]
    assert preview.funnel.matching == 10
    assert preview.funnel.reachable_sms == 4
    assert (preview.treated, preview.control) == (9, 1)
    assert preview.estimate.points == 900
    assert preview.estimate.sms == 4
    html = response.content.decode()
    assert 'class="funnel-matching">10<' in html
    assert "¥9.00" in html
    assert f'href="/staff/campaigns/{campaign.pk}/launch/"' in html


def test_launching_asks_for_confirmation_first(client, members):
    user = marketer()
    client.force_login(user)
    campaign = bonus_make(actor=user, segment=segment_make())
    confirm = client.get(f"/staff/campaigns/{campaign.pk}/launch/")
    assert confirm.status_code == 200
    assert 'name="when"' in confirm.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT  # looking is not launching
    response = client.post(
        f"/staff/campaigns/{campaign.pk}/launch/", {"when": "later", "at": "2099-01-02T10:00"}
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at.isoformat() == "2099-01-02T02:00:00+00:00"  # 10:00 Shanghai
    assert AuditEntry.objects.filter(action="campaign.launch", actor=user).count() == 1


def test_a_launch_in_the_past_or_without_a_time_is_refused_on_the_page(client, members):
    user = marketer()
    client.force_login(user)
    campaign = bonus_make(actor=user, segment=segment_make())
    no_time = client.post(f"/staff/campaigns/{campaign.pk}/launch/", {"when": "later"})
    assert no_time.status_code == 400
    assert list(no_time.context["form"].errors) == ["at"]
    past = client.post(
        f"/staff/campaigns/{campaign.pk}/launch/", {"when": "later", "at": "2020-01-01T10:00"}
    )
    assert past.status_code == 400
    assert "Choose a time that has not passed." in str(past.context["form"].errors["at"]) or (
        "请选择尚未过去的时间。" in str(past.context["form"].errors["at"])
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_campaign_that_cannot_launch_says_why_on_the_confirmation(client, members):
    user = marketer()
    client.force_login(user)
    campaign = bonus_make(actor=user, segment=segment_make(), message_body_zh="您好 {nickname}")
    response = client.post(f"/staff/campaigns/{campaign.pk}/launch/", {"when": "now"})
    assert response.status_code == 400
    assert "{nickname}" in response.content.decode()
    assert f"/staff/campaigns/{campaign.pk}/edit/" in response.content.decode()


@override_settings(CAMPAIGN_APPROVAL_COST=Decimal(8))
def test_an_administrator_approves_a_costly_campaign_from_its_page(client, members):
    builder = marketer()
    client.force_login(builder)
    campaign = bonus_make(actor=builder, segment=segment_make())
    page = client.get(f"/staff/campaigns/{campaign.pk}/").content.decode()
    assert "campaign-needs-approval" in page
    client.post(
        f"/staff/campaigns/{campaign.pk}/launch/", {"when": "later", "at": "2099-01-02T10:00"}
    )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.approval_required) == ("draft", True)
    assert (
        f"/staff/campaigns/{campaign.pk}/approve/"
        not in client.get(f"/staff/campaigns/{campaign.pk}/").content.decode()
    )
    client.force_login(administrator())
    page = client.get(f"/staff/campaigns/{campaign.pk}/").content.decode()
    assert f"/staff/campaigns/{campaign.pk}/approve/" in page
    client.post(f"/staff/campaigns/{campaign.pk}/approve/")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at.isoformat() == "2099-01-02T02:00:00+00:00"


def test_the_alert_offers_a_win_back_campaign_to_those_who_build_campaigns(client):
    from analytics import metrics
    from analytics.models import RiskBand
    from tests.analytics.conftest import AS_OF, rollup

    rollup(metrics.CHURN_BAND_MEMBERS, AS_OF, 80, dim=RiskBand.HIGH)
    rollup(metrics.CHURN_BAND_MEMBERS, AS_OF, 20, dim=RiskBand.LOW)
    client.force_login(marketer())
    html = client.get("/staff/analytics/").content.decode()
    assert 'class="button secondary winback-link" href="/staff/campaigns/win-back/?' in html
    client.force_login(make_role_user("store_manager", stores=[StoreFactory()]))
    assert "/staff/campaigns/win-back/" not in client.get("/staff/analytics/").content.decode()


def test_the_win_back_link_makes_the_segment_and_opens_the_draft(client):
    shop = StoreFactory(code="SH001")
    client.force_login(marketer())
    confirm = client.get(f"/staff/campaigns/win-back/?store={shop.pk}&tier=0&start=2026-01")
    assert confirm.status_code == 200
    assert not Segment.objects.exists()  # a GET makes nothing
    response = client.post("/staff/campaigns/win-back/", {"store": shop.pk, "tier": 0})
    campaign = Campaign.objects.get()
    assert response["Location"] == f"/staff/campaigns/{campaign.pk}/edit/"
    assert campaign.segment.rules["rule"]["rules"][-1]["value"] == [shop.pk]


def test_a_win_back_link_to_an_unknown_store_is_not_found(client):
    client.force_login(marketer())
    assert client.get("/staff/campaigns/win-back/?store=999999").status_code == 404
    assert client.get("/staff/campaigns/win-back/?store=abc").status_code == 404
    client.force_login(make_role_user("auditor"))
    assert client.get("/staff/campaigns/win-back/").status_code == 403


def test_after_launch_the_page_counts_the_messages_as_the_outbox_holds_them(
    client, members, django_capture_on_commit_callbacks
):
    from django.db.models import Count

    from campaigns.models import OutboxMessage

    user = marketer()
    client.force_login(user)
    campaign = bonus_make(
        actor=user, segment=segment_make(), send_sms=True, holdout_percent=Decimal(0)
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/staff/campaigns/{campaign.pk}/launch/", {"when": "now"})
    campaign.refresh_from_db()
    assert campaign.launched_at is not None
    assert campaign.audience_size == 10
    response = client.get(f"/staff/campaigns/{campaign.pk}/")
    shown = {
        (str(channel), str(status)): count
        for channel, statuses in response.context["message_counts"]
        for status, count in statuses
    }
    channels = dict(OutboxMessage.Channel.choices)
    statuses = dict(OutboxMessage.Status.choices)
    held = {
        (str(channels[row["channel"]]), str(statuses[row["status"]])): row["n"]
        for row in OutboxMessage.objects.filter(campaign=campaign)
        .values("channel", "status")
        .annotate(n=Count("id"))
    }
    assert shown == held
    assert sum(n for (channel, _), n in held.items() if channel == str(channels["sms"])) == 10
    html = response.content.decode()
    assert 'id="campaign-results"' in html
    assert "preview" not in response.context  # the estimate is for before launch


def test_a_segment_whose_rules_no_longer_hold_is_said_on_the_page_not_a_500(client, members):
    user = marketer()
    client.force_login(user)
    broken = segment_make(
        "失效人群",
        rules={
            "version": 1,
            "rule": {"group": "and", "rules": [{"field": "no_such_field", "op": "eq", "value": 1}]},
        },
    )
    campaign = bonus_make(actor=user, segment=broken)
    page = client.get(f"/staff/campaigns/{campaign.pk}/")
    assert page.status_code == 200
    assert page.context["preview_error"]
    launch = client.post(f"/staff/campaigns/{campaign.pk}/launch/", {"when": "now"})
    assert launch.status_code == 400
    assert launch.context["form"].non_field_errors()
