"""The figures panel on the staff member 360 page."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from analytics.models import MemberFigures
from tests.analytics.conftest import AS_OF, login
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_the_panel_shows_rfm_stage_and_churn_risk(client, store):
    login(client, "marketer")
    member = MemberFactory(home_store=store)
    MemberFigures.objects.create(
        member=member,
        as_of=AS_OF,
        store_key=store.pk,
        stage="active",
        r_score=5,
        f_score=4,
        m_score=3,
        rfm_cell="champions",
        churn_probability=0.734,
        churn_band="high",
        last_purchase_at=datetime.datetime(2026, 3, 21, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
        orders_365=12,
        net_spend_365=Decimal("3456.70"),
        updated_at=timezone.now(),
    )
    html = client.get(f"/staff/members/{member.member_no}/").content.decode()
    panel = html[html.index('class="card member-figures"') :].split("</section>")[0]
    assert "重要价值" in panel and "R 5 · F 4 · M 3" in panel
    assert "73%" in panel
    assert "2026-03-21" in panel  # the business date in Shanghai, not UTC's 03-20 16:30
    assert ">12</dd>" in panel and "¥3456.70" in panel
    assert "2026-03-31" in panel


def test_a_member_without_figures_gets_words_not_blanks(client, store):
    login(client, "store_staff", stores=[store])
    member = MemberFactory(home_store=store)
    html = client.get(f"/staff/members/{member.member_no}/").content.decode()
    assert "figures-none" in html
