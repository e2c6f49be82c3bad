"""The campaign pages: who sees what, the form per kind with its errors on the page, the
list and its filter, editing and cancelling."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignMember
from members.models import AuditEntry
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory

from .campaign_pages_support import bonus_make, marketer, segment_make

pytestmark = pytest.mark.django_db


def _login(client, user):
    client.force_login(user)
    return user


def _bonus_post(segment, **overrides):
    data = {
        "name": "春季回馈",
        "segment": segment.pk,
        "bonus_points": "200",
        "send_portal": "on",
        "message_body_zh": "送您200积分",
        "message_body_en": "",
        "holdout_percent": "10",
        "conversion_window_days": "14",
        "revenue_cap_percentile": "99.9",
    }
    data.update(overrides)
    return data


def test_a_marketer_builds_a_bonus_draft_through_the_form(client):
    user = _login(client, marketer())
    segment = segment_make()
    page = client.get("/staff/campaigns/new/?kind=bonus")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("bonus_points", "segment", "send_sms", "message_body_zh", "holdout_percent"):
        assert f'name="{name}"' in html
    assert 'name="multiplier"' not in html and 'name="reward"' not in html
    response = client.post("/staff/campaigns/new/?kind=bonus", _bonus_post(segment))
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/staff/campaigns/{campaign.pk}/"
    assert (campaign.kind, campaign.bonus_points, campaign.segment) == ("bonus", 200, segment)
    assert campaign.send_portal and not campaign.send_sms
    assert campaign.created_by == user
    detail = client.get(response["Location"]).content.decode()
    assert "春季回馈" in detail and "200" in detail


def test_form_errors_are_shown_on_the_page_and_nothing_is_saved(client):
    _login(client, marketer())
    segment = segment_make()
    response = client.post(
        "/staff/campaigns/new/?kind=bonus",
        _bonus_post(segment, bonus_points="0", holdout_percent="80", name=""),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"bonus_points", "holdout_percent", "name"}
    html = response.content.decode()
    assert html.count('class="field-error"') == 3
    assert not Campaign.objects.exists()


def test_a_promotion_ending_before_it_starts_is_refused_on_the_end_field(client):
    _login(client, marketer())
    response = client.post(
        "/staff/campaigns/new/?kind=multiplier",
        {
            "name": "双倍积分周",
            "multiplier": "2",
            "starts_at": "2026-03-10T10:00",
            "ends_at": "2026-03-09T10:00",
            "holdout_percent": "10",
            "conversion_window_days": "14",
            "revenue_cap_percentile": "99.9",
        },
    )
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["ends_at"]
    assert not Campaign.objects.exists()


def test_an_unknown_kind_offers_the_kinds(client):
    _login(client, marketer())
    response = client.get("/staff/campaigns/new/?kind=lottery")
    assert response.status_code == 400
    assert "?kind=bonus" in response.content.decode()


def test_a_draft_is_edited_and_a_launched_campaign_is_not(client):
    user = _login(client, marketer())
    segment = segment_make()
    campaign = bonus_make(actor=user, segment=segment)
    form = client.get(f"/staff/campaigns/{campaign.pk}/edit/")
    assert form.context["form"]["bonus_points"].value() == 100
    response = client.post(
        f"/staff/campaigns/{campaign.pk}/edit/", _bonus_post(segment, bonus_points="300")
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.bonus_points == 300
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    response = client.post(
        f"/staff/campaigns/{campaign.pk}/edit/", _bonus_post(segment, bonus_points="900")
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.bonus_points == 300


def test_the_list_filters_by_status(client):
    user = _login(client, marketer())
    segment = segment_make()
    bonus_make(actor=user, segment=segment, name="草稿活动")
    running = bonus_make(actor=user, segment=segment, name="进行中活动")
    Campaign.objects.filter(pk=running.pk).update(status=Campaign.Status.RUNNING)
    everything = client.get("/staff/campaigns/").content.decode()
    assert "草稿活动" in everything and "进行中活动" in everything
    assert 'href="/staff/campaigns/"' in everything  # the navigation link
    only_running = client.get("/staff/campaigns/?status=running").content.decode()
    assert "进行中活动" in only_running and "草稿活动" not in only_running
    assert client.get("/staff/campaigns/?status=nonsense").status_code == 200


def test_cancelling_from_the_page_is_logged(client):
    user = _login(client, marketer())
    campaign = bonus_make(actor=user, segment=segment_make())
    response = client.post(f"/staff/campaigns/{campaign.pk}/cancel/")
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert AuditEntry.objects.filter(action="campaign.cancel", actor=user).count() == 1
    again = client.post(f"/staff/campaigns/{campaign.pk}/cancel/", follow=True)
    assert again.status_code == 200
    assert AuditEntry.objects.filter(action="campaign.cancel").count() == 1


def test_an_auditor_reads_but_cannot_build_launch_or_cancel(client):
    campaign = bonus_make(actor=marketer(), segment=segment_make(), name="春季回馈")
    _login(client, make_role_user("auditor"))
    assert "春季回馈" in client.get("/staff/campaigns/").content.decode()
    detail = client.get(f"/staff/campaigns/{campaign.pk}/").content.decode()
    assert "春季回馈" in detail
    assert f"/staff/campaigns/{campaign.pk}/launch/" not in detail
    assert f"/staff/campaigns/{campaign.pk}/cancel/" not in detail
    assert client.get("/staff/campaigns/new/?kind=bonus").status_code == 403
    assert client.post(f"/staff/campaigns/{campaign.pk}/cancel/").status_code == 403
    assert client.get(f"/staff/campaigns/{campaign.pk}/launch/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_store_staff_see_only_launched_campaigns_that_reached_their_stores(client):
    mine, other = StoreFactory(code="SH001"), StoreFactory(code="BJ001")
    author = marketer()
    segment = segment_make()
    reached = bonus_make(actor=author, segment=segment, name="到达本店")
    elsewhere = bonus_make(actor=author, segment=segment, name="别家门店")
    draft = bonus_make(actor=author, segment=segment, name="还是草稿")
    now = timezone.now()
    for campaign, store in ((reached, mine), (elsewhere, other)):
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.COMPLETED, launched_at=now
        )
        CampaignMember.objects.create(
            campaign=campaign,
            member=MemberFactory(home_store=store),
            arm=CampaignMember.Arm.TREATMENT,
            draw=0.5,
        )
    _login(client, make_role_user("store_staff", stores=[mine]))
    html = client.get("/staff/campaigns/").content.decode()
    assert "到达本店" in html
    assert "别家门店" not in html and "还是草稿" not in html
    assert "?kind=bonus" not in html  # no building
    assert client.get(f"/staff/campaigns/{reached.pk}/").status_code == 200
    assert client.get(f"/staff/campaigns/{elsewhere.pk}/").status_code == 404
    assert client.get(f"/staff/campaigns/{draft.pk}/").status_code == 404
    assert client.post(f"/staff/campaigns/{reached.pk}/cancel/").status_code == 403
