"""The figures a marketer sees before launch: the cost estimate, whether an administrator
must approve, and the segment's recent conversion rate behind the minimum detectable effect."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.models import MemberFigures
from campaigns.models import Campaign, CampaignMember
from campaigns.results import (
    POINTS_BASIS_FIXED,
    POINTS_BASIS_RECENT_SPEND,
    campaign_cost_estimate,
    campaign_needs_approval,
    segment_baseline_rate,
)
from campaigns.stats import minimum_detectable_effect
from members.models import Member
from points.models import EarningPolicy, Reward
from tests.campaigns.results_world import DAY, LAUNCH, build_world
from tests.factories import MemberFactory


@pytest.fixture
def prices(settings):
    settings.ANALYTICS_POINT_VALUE = Decimal("0.01")
    settings.CAMPAIGN_SMS_UNIT_PRICE = Decimal("0.05")
    settings.CAMPAIGN_EMAIL_UNIT_PRICE = Decimal("0.10")
    settings.CAMPAIGN_APPROVAL_COST = Decimal("10000")


def audience_sql(campaign: Campaign) -> tuple[str, list]:
    table = CampaignMember._meta.db_table
    return f"SELECT member_id FROM {table} WHERE campaign_id = %s", [campaign.pk]


def test_baseline_rate_is_the_share_who_bought_in_the_window(db):
    world = build_world()
    # In the 30 days before launch only t3 bought (¥300 at L − 1 d): 1 of 10.
    rate = segment_baseline_rate(
        member_ids_sql=audience_sql(world.campaign), at=LAUNCH, window_days=30
    )
    assert rate == pytest.approx(0.1)
    # In the 20 days after launch: t1, t2, t4 (at L + 15 d), c1 and c2: 5 of 10.
    rate = segment_baseline_rate(
        member_ids_sql=audience_sql(world.campaign), at=LAUNCH + 20 * DAY, window_days=20
    )
    assert rate == pytest.approx(0.5)


def test_baseline_rate_takes_any_sql_of_member_ids(db):
    world = build_world()
    # Store A's members (t1, t2, t5, c1, c3) by their own column name; t1, t2 and c1 bought.
    sql = (f"SELECT id FROM {Member._meta.db_table} WHERE home_store_id = %s", [world.store_a.pk])
    rate = segment_baseline_rate(member_ids_sql=sql, at=LAUNCH + 20 * DAY, window_days=20)
    assert rate == pytest.approx(0.6)
    # The MDE for 900 : 100 at that rate: 2.8 · √(0.6 · 0.4 · (1/900 + 1/100)) = 0.14459
    mde = minimum_detectable_effect(baseline_rate=rate, n_treatment=900, n_control=100)
    assert mde == pytest.approx(0.144588, abs=1e-5)


def test_an_empty_segment_has_no_baseline(db):
    sql = (f"SELECT id FROM {Member._meta.db_table} WHERE id < 0", [])
    assert segment_baseline_rate(member_ids_sql=sql, at=timezone.now(), window_days=30) is None


def test_a_bonus_campaigns_estimate(db, prices):
    campaign = Campaign.objects.create(name="b", kind=Campaign.Kind.BONUS, bonus_points=200)
    # 200 points × 40,000 treated × ¥0.01 = ¥80,000: needs an administrator's approval.
    estimate = campaign_cost_estimate(campaign=campaign, treated=40_000, sms=30_000, emails=0)
    assert estimate.points == 8_000_000
    assert estimate.points_cost == Decimal("80000.00")
    assert estimate.points_basis == POINTS_BASIS_FIXED
    # 30,000 SMS × ¥0.05 = ¥1,500
    assert estimate.messages_cost == Decimal("1500.00")
    assert estimate.total == Decimal("81500.00")
    assert campaign_needs_approval(estimate=estimate)
    # Exactly at the threshold is not past it: 200 × 5,000 × 0.01 = ¥10,000.
    at_threshold = campaign_cost_estimate(campaign=campaign, treated=5_000, sms=0, emails=0)
    assert not campaign_needs_approval(estimate=at_threshold)


def test_a_coupon_campaigns_estimate_is_the_face_value(db, prices):
    amount_off = Reward.objects.create(
        code="OFF20",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="减20",
        name_en="¥20 off",
        points_price=2000,
        amount_off=Decimal(20),
    )
    percent = Reward.objects.create(
        code="PCT10",
        kind=Reward.Kind.PERCENT_OFF,
        name_zh="九折",
        name_en="10% off",
        points_price=1500,
        percent_off=10,
    )
    campaign = Campaign.objects.create(name="c", kind=Campaign.Kind.COUPON, reward=amount_off)
    # ¥20 × 300 treated = ¥6,000; no points, so no approval whatever the coupons cost.
    estimate = campaign_cost_estimate(campaign=campaign, treated=300, sms=0, emails=300)
    assert (estimate.coupons, estimate.coupon_face_value) == (300, Decimal("6000.00"))
    assert estimate.points_cost == 0
    assert estimate.total == Decimal("6030.00")
    assert not campaign_needs_approval(estimate=estimate)
    # A percent-off coupon has no face value of its own: its points price at ¥0.01 a point,
    # 1,500 × 0.01 = ¥15 each.
    campaign.reward = percent
    estimate = campaign_cost_estimate(campaign=campaign, treated=10, sms=0, emails=0)
    assert estimate.coupon_face_value == Decimal("150.00")


def test_a_multiplier_promotions_points_are_forecast_from_recent_spend(db, prices):
    EarningPolicy.objects.all().delete()
    EarningPolicy.objects.create(base_rate=Decimal(1))
    today = timezone.localdate()
    spend = {"a": 900, "b": 1800, "c": 0}
    members = {key: MemberFactory() for key in spend}
    for key, member in members.items():
        MemberFigures.objects.create(
            member=member,
            as_of=today,
            stage="active",
            updated_at=timezone.now(),
            net_spend_90=Decimal(spend[key]),
        )
    start = timezone.now()
    campaign = Campaign.objects.create(
        name="m",
        kind=Campaign.Kind.MULTIPLIER,
        multiplier=Decimal(2),
        starts_at=start,
        ends_at=start + datetime.timedelta(days=7),
    )
    audience = (
        f"SELECT id FROM {Member._meta.db_table} WHERE id IN (%s, %s)",
        [members["a"].pk, members["b"].pk],
    )
    # a and b spent ¥1,350 on average in 90 days: ¥15 a day; 7 days × ¥15 × 1 point per ¥1
    # × (2 − 1) extra = 105 points each; × 100 treated = 10,500 points = ¥105.
    estimate = campaign_cost_estimate(
        campaign=campaign, treated=100, sms=0, emails=0, member_ids_sql=audience
    )
    assert estimate.points_basis == POINTS_BASIS_RECENT_SPEND
    assert estimate.points == 10_500
    assert estimate.points_cost == Decimal("105.00")
    # Without the audience's SQL: everyone with figures, ¥900 on average: 70 × 100 = 7,000.
    estimate = campaign_cost_estimate(campaign=campaign, treated=100, sms=0, emails=0)
    assert estimate.points == 7_000
