"""Churn features as of a cut-off: a worked example, checked by hand."""

from __future__ import annotations

import datetime
import math

import pytest
from django.db import transaction

from analytics.churn.features import churn_features
from points.ledger import account_lock, points_credit, points_debit
from points.models import Account, LedgerTransaction
from tiers.models import TierHistory, TierLevel

from .churn_history import at, member_make, purchase_make, return_make

pytestmark = pytest.mark.django_db

CUTOFF = datetime.date(2026, 3, 31)


def _post(member, *, points: int, day: datetime.date, key: str) -> None:
    when = at(day, 10)
    with transaction.atomic():
        account = account_lock(member=member)
        if points > 0:
            points_credit(
                account=account,
                points=points,
                kind=LedgerTransaction.Kind.EARN,
                counter_kind=Account.Kind.ISSUANCE,
                key=key,
                request_fingerprint=key,
                source=LedgerTransaction.Source.RULE,
                occurred_at=when,
                now=when,
            )
        else:
            points_debit(
                account=account,
                points=-points,
                kind=LedgerTransaction.Kind.REDEEM,
                counter_kind=Account.Kind.REDEMPTION,
                key=key,
                request_fingerprint=key,
                source=LedgerTransaction.Source.REWARD,
                occurred_at=when,
                now=when,
            )


@pytest.fixture
def example(store):
    d = datetime.date
    alice = member_make(enrolled=d(2026, 1, 1), store=store)
    # Three purchases 30 days apart, one partly returned before the cut-off; one purchase
    # and one return after it, which no feature may see.
    purchase_make(member=alice, store=store, when=at(d(2026, 1, 10)), amount="100.00")
    purchase_make(member=alice, store=store, when=at(d(2026, 2, 9)), amount="200.00")
    third = purchase_make(member=alice, store=store, when=at(d(2026, 3, 11)), amount="300.00")
    return_make(purchase=third, when=at(d(2026, 3, 20)), amount="50.00")
    later = purchase_make(member=alice, store=store, when=at(d(2026, 4, 5)), amount="80.00")
    return_make(purchase=third, when=at(d(2026, 4, 6)), amount="100.00")
    return_make(purchase=later, when=at(d(2026, 4, 7)), amount="80.00")
    # Points: 1,000 earned, 250 redeemed by the cut-off; 500 more earned after it.
    _post(alice, points=1000, day=d(2026, 1, 10), key="t:earn:1")
    _post(alice, points=-250, day=d(2026, 3, 1), key="t:redeem:1")
    _post(alice, points=500, day=d(2026, 4, 5), key="t:earn:2")
    # Tier: silver from February; gold only after the cut-off.
    silver, gold = TierLevel.objects.order_by("rank")[1:3]
    TierHistory.objects.create(
        member=alice, to_level=silver, reason=TierHistory.Reason.UPGRADE, at=at(d(2026, 2, 9))
    )
    TierHistory.objects.create(
        member=alice,
        from_level=silver,
        to_level=gold,
        reason=TierHistory.Reason.UPGRADE,
        at=at(d(2026, 4, 5)),
    )
    never = member_make(enrolled=d(2026, 2, 1), store=store)
    too_new = member_make(enrolled=d(2026, 4, 1), store=store)
    closed_before = member_make(
        enrolled=d(2026, 1, 5), store=store, status="anonymised", closed_at=at(d(2026, 3, 15))
    )
    closed_after = member_make(
        enrolled=d(2026, 1, 5), store=store, status="anonymised", closed_at=at(d(2026, 4, 10))
    )
    return {
        "alice": alice,
        "never": never,
        "too_new": too_new,
        "closed_before": closed_before,
        "closed_after": closed_after,
        "silver": silver,
    }


def _row(frame, member):
    rows = frame[frame["member_id"] == member.pk]
    assert len(rows) == 1
    return rows.iloc[0]


def test_a_member_s_features_count_only_what_happened_by_the_end_of_the_cut_off_day(example):
    frame = churn_features(cutoff=CUTOFF, horizon_days=90)
    alice = _row(frame, example["alice"])
    assert alice["recency_days"] == 20  # 11 March → 31 March
    assert alice["never_purchased"] == 0
    assert alice["orders_30"] == 1  # the 30 days 2 – 31 March
    assert alice["orders_90"] == 3
    assert alice["orders_365"] == alice["orders_total"] == 3
    assert alice["net_spend_90"] == pytest.approx(550.0)  # 600 bought − 50 returned
    assert alice["net_spend_365"] == pytest.approx(550.0)
    assert alice["tenure_days"] == 89  # 1 January → 31 March
    assert alice["gap_mean_days"] == pytest.approx(30.0)
    assert alice["gap_std_days"] == pytest.approx(0.0, abs=1e-6)
    assert alice["recency_to_gap"] == pytest.approx(20 / 30)
    assert alice["orders_trend_90"] == 3  # three in the last 90 days, none in the 90 before
    assert alice["returns_share"] == pytest.approx(50 / 600)
    assert alice["points_balance"] == 750
    assert alice["redeemed_share"] == pytest.approx(0.25)
    assert alice["tier_rank"] == example["silver"].rank
    # She bought on 5 April, inside the horizon: not churned.
    assert alice["churned"] == 0


def test_a_member_who_never_bought_has_no_recency_and_counts_as_churned_if_they_still_do_not(
    example,
):
    frame = churn_features(cutoff=CUTOFF, horizon_days=90)
    never = _row(frame, example["never"])
    assert never["never_purchased"] == 1
    assert math.isnan(never["recency_days"])
    assert never["orders_total"] == 0
    assert never["churned"] == 1


def test_only_members_enrolled_and_not_closed_on_the_cut_off_day_are_in(example):
    members = set(churn_features(cutoff=CUTOFF)["member_id"])
    assert example["alice"].pk in members
    assert example["closed_after"].pk in members  # closed in April, open on 31 March
    assert example["too_new"].pk not in members
    assert example["closed_before"].pk not in members


def test_the_label_is_churned_when_the_only_purchase_after_the_cut_off_is_past_the_horizon(
    example,
):
    # Horizon of 4 days: 1 – 4 April holds no purchase of Alice's (hers is on 5 April).
    frame = churn_features(cutoff=CUTOFF, horizon_days=4)
    assert _row(frame, example["alice"])["churned"] == 1
    frame = churn_features(cutoff=CUTOFF, horizon_days=5)
    assert _row(frame, example["alice"])["churned"] == 0
