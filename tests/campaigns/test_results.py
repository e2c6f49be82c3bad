"""A small campaign's results equal the arms worked out by hand (results_world.py)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from campaigns import stats
from campaigns.models import CampaignResult
from campaigns.results import (
    NOTE_FEW_CONVERSIONS,
    NOTE_NOT_LAUNCHED,
    NOTE_WINDOW_OPEN,
    CampaignResultFigures,
    campaign_cost_estimate,
    campaign_needs_approval,
    campaign_results_compute,
    campaign_results_refresh,
)
from tests.campaigns.results_world import DAY, LAUNCH, build_world

AFTER = LAUNCH + 20 * DAY  # the window closed at L + 14 d


@pytest.fixture
def world(db, settings):
    settings.ANALYTICS_POINT_VALUE = Decimal("0.01")
    settings.CAMPAIGN_EXPECTED_REDEMPTION = 0.7
    settings.CAMPAIGN_SMS_UNIT_PRICE = Decimal("0.05")
    settings.CAMPAIGN_EMAIL_UNIT_PRICE = Decimal("0.10")
    return build_world()


def test_the_arms_are_the_hand_computed_ones(world):
    figures = campaign_results_compute(campaign=world.campaign, now=AFTER)
    t, c = figures.treatment, figures.control
    # Treatment: 6 members; t1 and t2 bought in the window (t3 only returned, t4 bought
    # after it): 2 conversions, 1/3. Revenue 150 + 120 − 100 + 0 + 0 + 0 = 170, per member
    # 28.33; orders 2 + 1 = 3, per member 0.5.
    assert (t.members, t.conversions, t.orders) == (6, 2, 3)
    assert t.conversion_rate == pytest.approx(1 / 3)
    assert t.revenue_total == 170
    assert t.revenue_per_member == pytest.approx(170 / 6)
    assert t.orders_per_member == pytest.approx(0.5)
    # Σy² = 150² + 120² + 100² = 46,900; SS = 46,900 − 6 · 28.333² = 42,083.33; s² = SS/5
    assert t.revenue_variance == pytest.approx(8416.6667)
    # Holdout: 4 members; c1 (¥60) and c2 (¥40; its ¥500 at L + 14 d is outside): 2 of 4.
    # Revenue 100, per member 25; Σy² = 5,200, SS = 5,200 − 4 · 625 = 2,700, s² = 900.
    assert (c.members, c.conversions, c.orders) == (4, 2, 2)
    assert c.conversion_rate == 0.5
    assert c.revenue_total == 100
    assert c.revenue_per_member == 25
    assert c.revenue_variance == pytest.approx(900)
    assert figures.window_start == LAUNCH
    assert figures.window_end == LAUNCH + 14 * DAY
    assert NOTE_WINDOW_OPEN not in figures.notes


def test_the_uplifts_and_their_intervals(world):
    figures = campaign_results_compute(campaign=world.campaign, now=AFTER)
    # Conversion: 1/3 − 1/2 = −1/6, with 2 conversions per arm: Newcombe's interval.
    conversion = figures.conversion_uplift
    assert conversion.value == pytest.approx(-1 / 6)
    assert conversion.method == stats.NEWCOMBE
    assert NOTE_FEW_CONVERSIONS in figures.notes
    assert (conversion.low, conversion.high) == pytest.approx((-0.5890853, 0.3402140))
    # Revenue per member: 28.333 − 25 = 3.333; s_t²/n_t = 1,402.78, s_c²/n_c = 225,
    # SE² = 1,627.78; df = 1,627.78² / (1,402.78²/5 + 225²/3) = 6.4558
    revenue = figures.revenue_uplift
    assert revenue.value == pytest.approx(10 / 3)
    assert revenue.df == pytest.approx(6.45578, abs=1e-4)
    assert (revenue.low, revenue.high) == pytest.approx((-93.72395, 100.39062))
    # Relative: (28.333 − 25)/25 = 0.1333, delta-method interval
    relative = figures.relative_revenue_uplift
    assert relative.value == pytest.approx(2 / 15)
    assert (relative.low, relative.high) == pytest.approx((-3.0913548, 3.3580215))
    # Incremental revenue = 3.333 × 6 = ¥20.00
    assert figures.incremental_revenue == Decimal("20.00")


def test_the_cost_counts_what_the_campaign_actually_spent(world):
    figures = campaign_results_compute(campaign=world.campaign, now=AFTER)
    cost = figures.cost
    # 600 points (not the other campaign's 999) × ¥0.01 × 0.7 expected redemption = ¥4.20
    assert cost.points_issued == 600
    assert cost.points_cost == Decimal("4.20")
    # One of its coupons was used (t2's is still open; c1's is nobody's in this campaign).
    assert (cost.coupons_used, cost.coupons_face_value) == (1, Decimal("20.00"))
    # 4 SMS sent (t5's failed) × ¥0.05 + 2 e-mails × ¥0.10; the portal notice is free.
    assert (cost.sms_sent, cost.emails_sent) == (4, 2)
    assert cost.messages_cost == Decimal("0.40")
    assert cost.total == Decimal("24.60")
    # Return on cost = ¥20.00 ÷ ¥24.60 = 0.81
    assert figures.return_on_cost == Decimal("0.81")


def test_revenue_is_capped_at_the_chosen_percentile(world):
    world.campaign.revenue_cap_percentile = Decimal(90)
    # The 10 members' revenue sorted: −100, 0 ×5, 40, 60, 120, 150. The 90th percentile
    # (linear) sits at rank 0.9 × 9 = 8.1: 120 + 0.1 × (150 − 120) = 123. t1's 150 → 123.
    figures = campaign_results_compute(campaign=world.campaign, now=AFTER)
    assert figures.revenue_cap == 123
    assert figures.members_capped == 1
    assert figures.revenue_cap_percentile == 90
    # Treatment: 123 + 120 − 100 = 143; holdout unchanged.
    assert figures.treatment.revenue_total == 143
    assert figures.treatment.revenue_per_member == pytest.approx(143 / 6)
    assert figures.control.revenue_total == 100


def test_a_store_sees_its_own_members_only(world):
    figures = campaign_results_compute(
        campaign=world.campaign, now=AFTER, store_ids=[world.store_a.pk]
    )
    # Store A's members: t1, t2, t5 (150 + 120 + 0) and c1, c3 (60 + 0).
    assert (figures.treatment.members, figures.treatment.conversions) == (3, 2)
    assert figures.treatment.revenue_total == 270
    assert (figures.control.members, figures.control.conversions) == (2, 1)
    assert figures.control.revenue_total == 60
    # Their cost: 300 points (¥2.10), t1's used coupon (¥20), 2 SMS and 2 e-mails (¥0.30).
    assert figures.cost.points_issued == 300
    assert figures.cost.total == Decimal("22.40")
    assert figures.store_ids == [world.store_a.pk]


def test_no_store_means_no_members_not_everyone(world):
    figures = campaign_results_compute(campaign=world.campaign, now=AFTER, store_ids=[])
    assert figures.treatment.members == figures.control.members == 0
    assert figures.conversion_uplift.value is None


def test_an_open_window_stops_at_now_and_says_so(world):
    # Five days in: t2's return at L + 5 d has not happened yet (the window is [L, now)).
    figures = campaign_results_compute(campaign=world.campaign, now=LAUNCH + 5 * DAY)
    assert NOTE_WINDOW_OPEN in figures.notes
    assert figures.window_end == LAUNCH + 5 * DAY
    assert figures.window_closes == LAUNCH + 14 * DAY
    # t1 150 + t2 200 − t3 100 = 250; c1's ¥60 at L + 4 d, c2's not yet.
    assert figures.treatment.revenue_total == 250
    assert figures.control.revenue_total == 60


def test_a_campaign_not_launched_has_no_figures_and_no_error(world):
    world.campaign.launched_at = None
    figures = campaign_results_compute(campaign=world.campaign, now=AFTER)
    assert NOTE_NOT_LAUNCHED in figures.notes
    assert figures.treatment.members == 0


def test_refresh_stores_the_all_store_figures_and_replaces_them(world):
    first = campaign_results_refresh(campaign=world.campaign, now=LAUNCH + 5 * DAY)
    second = campaign_results_refresh(campaign=world.campaign, now=AFTER)
    assert CampaignResult.objects.filter(campaign=world.campaign).count() == 1
    assert second.pk == first.pk
    second.refresh_from_db()
    assert second.window_end == LAUNCH + 14 * DAY
    stored = CampaignResultFigures.from_json(second.figures)
    assert stored == campaign_results_compute(campaign=world.campaign, now=AFTER)
    assert stored.cost.total == Decimal("24.60")


def test_cost_estimate_before_launch(world, settings):
    settings.CAMPAIGN_APPROVAL_COST = Decimal("10000")
    # 100 points × 9,000 treated × ¥0.01 = ¥9,000; 9,000 SMS × ¥0.05 = ¥450;
    # 2,000 e-mails × ¥0.10 = ¥200.
    estimate = campaign_cost_estimate(campaign=world.campaign, treated=9000, sms=9000, emails=2000)
    assert estimate.points == 900_000
    assert estimate.points_cost == Decimal("9000.00")
    assert estimate.messages_cost == Decimal("650.00")
    assert estimate.total == Decimal("9650.00")
    assert not campaign_needs_approval(estimate=estimate)
    # 12,000 treated: ¥12,000 of points passes the ¥10,000 threshold.
    bigger = campaign_cost_estimate(campaign=world.campaign, treated=12000, sms=0, emails=0)
    assert campaign_needs_approval(estimate=bigger)


def test_results_of_a_campaign_launched_a_moment_ago(world):
    figures = campaign_results_compute(campaign=world.campaign, now=LAUNCH)
    assert figures.treatment.members == 6
    assert figures.treatment.conversions == 0
    assert figures.relative_revenue_uplift.value is None
    assert figures.window_end == LAUNCH
    assert figures.window_end - figures.window_start == datetime.timedelta(0)
