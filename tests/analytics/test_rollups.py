"""The dashboards' roll-ups reconcile with purchases, returns and the ledger (ISSUE 12 §2).

One small history over two stores and eighteen months, with a return, points paid at the
till and lots that expired; every roll-up row is checked against sums computed here
directly from the rows a cashier and an accountant would look at.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal

import pytest

from analytics import metrics as m
from analytics.models import MemberFigures, Rollup
from analytics.services import analytics_rollup
from members.models import Member
from points.jobs import expiry_job
from points.models import Account, LedgerTransaction, Lot, Purchase, Return
from points.services import purchase_record
from tests.factories import StoreFactory
from tiers.models import TierHistory

from .history import SHANGHAI, at, buy, give_back, member

AS_OF = datetime.date(2026, 6, 30)


def month(when: datetime.datetime) -> datetime.date:
    return when.astimezone(SHANGHAI).date().replace(day=1)


def rows(metric: str, *, store: int | None = 0, tier: int | None = 0) -> dict:
    """The metric's rows for all tiers (and all stores unless a store is asked for)."""
    qs = Rollup.objects.filter(metric=metric)
    if store is not None:
        qs = qs.filter(store_key=store)
    if tier is not None:
        qs = qs.filter(tier_key=tier)
    return {(r.period, r.dim) if r.dim else r.period: r.value for r in qs}


@pytest.fixture
def shops(db):
    return StoreFactory(code="X01"), StoreFactory(code="Y01")


@pytest.fixture
def history(shops):
    x, y = shops
    a = member(enrolled="2024-12-15", store=x)
    buy(a, store=x, day="2025-01-05", amount="100", receipt="A0")
    buy(a, store=x, day="2026-01-10", amount="50", receipt="A1")
    buy(a, store=y, day="2026-06-01", amount="200", receipt="A2")
    buy(a, store=x, day="2026-06-05", amount="20", receipt="A3")
    give_back(store=y, receipt="R-A2", day="2026-06-20", amount="40", original="A2")
    when = at("2026-06-10")
    purchase_record(
        member=a,
        store=x,
        receipt_no="A4",
        occurred_at=when,
        amount=Decimal("30"),
        points_to_use=100,
        now=when,
    )
    b = member(enrolled="2025-01-01", store=y)
    buy(b, store=y, day="2025-01-20", amount="300", receipt="B0")
    buy(b, store=y, day="2026-03-01", amount="500", receipt="B1")
    buy(b, store=x, day="2026-03-15", amount="10", receipt="B2")
    c = member(enrolled="2026-06-20", store=x)
    buy(c, store=x, day="2026-06-21", amount="30", receipt="C1")
    member(enrolled="2025-06-01", store=x)
    gone = member(enrolled="2025-02-01", store=y)
    buy(gone, store=y, day="2025-02-03", amount="60", receipt="G1")
    Member.objects.filter(pk=gone.pk).update(
        status=Member.Status.CLOSED, closed_at=at("2025-09-10")
    )
    # The lots of January 2025 lasted to 1 February 2026.
    expiry_job(datetime.date(2026, 3, 1))
    # After the day: nothing below may count it.
    buy(c, store=x, day="2026-07-01", amount="999", receipt="C2", hour=1)
    analytics_rollup(business_date=AS_OF)
    return {"a": a, "b": b, "c": c, "x": x, "y": y}


def purchases_until_as_of():
    end = datetime.datetime(2026, 7, 1, tzinfo=SHANGHAI)
    return list(Purchase.objects.filter(occurred_at__lt=end))


def test_orders_revenue_and_returns_add_up_by_month_and_store(history):
    for store in (0, history["x"].pk, history["y"].pk):
        orders, revenue, returns = defaultdict(int), defaultdict(Decimal), defaultdict(Decimal)
        for p in purchases_until_as_of():
            if store in (0, p.store_id):
                orders[month(p.occurred_at)] += 1
                revenue[month(p.occurred_at)] += p.amount
        for r in Return.objects.all():
            if store in (0, r.store_id):
                returns[month(r.occurred_at)] += r.amount
        assert rows(m.ORDERS, store=store) == orders
        assert rows(m.REVENUE, store=store) == revenue
        assert rows(m.RETURNS, store=store) == returns
    # June 2026: ¥200 + ¥20 + ¥30 + ¥30 bought, ¥40 given back.
    assert rows(m.REVENUE)[datetime.date(2026, 6, 1)] == Decimal("280")
    assert rows(m.RETURNS)[datetime.date(2026, 6, 1)] == Decimal("40")


def test_buyers_count_a_member_once_however_many_stores(history):
    buyers, per_month = defaultdict(set), defaultdict(lambda: defaultdict(int))
    for p in purchases_until_as_of():
        buyers[month(p.occurred_at)].add(p.member_id)
        per_month[month(p.occurred_at)][p.member_id] += 1
    assert rows(m.BUYERS) == {k: len(v) for k, v in buyers.items()}
    repeat = {k: sum(1 for n in v.values() if n >= 2) for k, v in per_month.items()}
    assert rows(m.REPEAT_BUYERS) == {k: v for k, v in repeat.items() if v}
    # June 2026: Ann bought four times at two stores, Cai once: repurchase rate 1 ÷ 2.
    june = datetime.date(2026, 6, 1)
    assert (rows(m.BUYERS)[june], rows(m.REPEAT_BUYERS)[june]) == (2, 1)
    # At store Y in June only Ann bought, once.
    assert rows(m.BUYERS, store=history["y"].pk)[june] == 1
    assert june not in rows(m.REPEAT_BUYERS, store=history["y"].pk)


def test_members_total_new_and_active_by_month(history):
    everyone = list(Member.objects.all())
    totals = rows(m.MEMBERS_TOTAL)
    for period, value in totals.items():
        end = datetime.datetime.combine(
            (period + datetime.timedelta(days=32)).replace(day=1), datetime.time(), SHANGHAI
        )
        expected = sum(
            1
            for x in everyone
            if x.enrolled_at < end and (x.closed_at is None or x.closed_at >= end)
        )
        assert value == expected, period
    # The closed member counted until August 2025, not in September.
    assert totals[datetime.date(2025, 8, 1)] - totals[datetime.date(2025, 9, 1)] == 1
    assert totals[datetime.date(2026, 6, 1)] == 4
    new = defaultdict(int)
    for x in everyone:
        new[month(x.enrolled_at)] += 1
    assert rows(m.MEMBERS_NEW) == new
    assert rows(m.MEMBERS_ACTIVE) == rows(m.BUYERS)


def test_points_issued_redeemed_expired_and_other_reconcile_with_balances(history):
    issued, redeemed, expired = (
        rows(x) for x in (m.POINTS_ISSUED, m.POINTS_REDEEMED, m.POINTS_EXPIRED)
    )
    other = rows(m.POINTS_OTHER)
    txns = LedgerTransaction.objects.filter(
        member__isnull=False, occurred_at__lt=datetime.datetime(2026, 7, 1, tzinfo=SHANGHAI)
    )
    assert sum(issued.values()) == sum(
        t.member_amount
        for t in txns
        if t.kind in ("earn", "adjust", "transfer") and t.member_amount > 0
    )
    assert sum(redeemed.values()) == 100  # the points paid at the till
    assert sum(expired.values()) == sum(-t.member_amount for t in txns if t.kind == "expire") > 0
    outstanding = sum(a.balance for a in Account.objects.filter(member__isnull=False))
    assert rows(m.POINTS_OUTSTANDING) == {AS_OF: outstanding}
    net = (
        sum(issued.values()) - sum(redeemed.values()) - sum(expired.values()) + sum(other.values())
    )
    # Outstanding is the ledger's figure when the job ran, which holds the 999 points of the
    # purchase after the day; the monthly flows stop at the day.
    assert net + 999 == outstanding


def test_lots_break_down_into_redeemed_expired_and_open_by_issue_month(history):
    issued, open_ = rows(m.LOT_ISSUED), rows(m.LOT_OPEN)
    lots = Lot.objects.filter(
        account__member__isnull=False,
        earned_at__lt=datetime.datetime(2026, 7, 1, tzinfo=SHANGHAI),
    )
    expected_issued, expected_open = defaultdict(int), defaultdict(int)
    for lot in lots:
        expected_issued[month(lot.earned_at)] += lot.points
        expected_open[month(lot.earned_at)] += lot.remaining
    assert issued == expected_issued
    assert open_ == {k: v for k, v in expected_open.items() if v}
    # January 2025's lots all expired: a closed month whose breakage is 100 %.
    jan = datetime.date(2025, 1, 1)
    assert rows(m.LOT_EXPIRED)[jan] == issued[jan] > 0
    assert jan not in open_
    # The 100 points paid on 10 June 2026 came from the oldest open lots first: all 50 of
    # January 2026's (five months after it was earned), then 50 of 1 June's.
    assert rows(m.LOT_REDEEMED_BY_AGE) == {
        (datetime.date(2026, 1, 1), "5"): 50,
        (datetime.date(2026, 6, 1), "0"): 50,
    }
    assert rows(m.LOT_REDEEMED) == {datetime.date(2026, 1, 1): 50, datetime.date(2026, 6, 1): 50}


def test_cohort_retention_counts_purchases_by_months_since_enrolment(history):
    sizes, active = rows(m.COHORT_SIZE), rows(m.COHORT_ACTIVE)
    # Ann enrolled December 2024: bought in months 1, 13 and 18 after.
    dec = datetime.date(2024, 12, 1)
    assert sizes[dec] == 1
    assert {k: v for (c, k), v in active.items() if c == dec} == {"1": 1, "13": 1, "18": 1}
    # Bo (January 2025): months 0 and 14; the closed member (February 2025): month 0.
    jan = datetime.date(2025, 1, 1)
    assert {k: v for (c, k), v in active.items() if c == jan} == {"0": 1, "14": 1}
    assert active[(datetime.date(2025, 2, 1), "0")] == 1
    assert active[(datetime.date(2026, 6, 1), "0")] == 1


def test_snapshots_count_every_member_with_figures(history):
    stages = rows(m.STAGE_MEMBERS)
    assert sum(stages.values()) == MemberFigures.objects.count() == 4
    assert stages == {
        (AS_OF, "active"): 2,  # Ann (9 days), Cai (new? no: enrolled 10 days ago, one purchase)
        (AS_OF, "silent"): 1,
        (AS_OF, "never"): 1,
    } or stages == {
        (AS_OF, "active"): 1,
        (AS_OF, "new"): 1,
        (AS_OF, "silent"): 1,
        (AS_OF, "never"): 1,
    }
    rfm = rows(m.RFM_MEMBERS)
    assert sum(rfm.values()) == MemberFigures.objects.filter(r_score__isnull=False).count()
    revenue = rows(m.RFM_REVENUE)
    assert sum(revenue.values()) == sum(
        f.net_spend_365 for f in MemberFigures.objects.filter(r_score__isnull=False)
    )


def test_tier_changes_are_counted_by_direction(history):
    ups = defaultdict(int)
    for h in TierHistory.objects.select_related("from_level", "to_level"):
        if h.from_level is None or h.to_level.rank > h.from_level.rank:
            ups[month(h.at)] += 1
    assert rows(m.TIER_UP) == ups


def test_churn_events_and_the_members_alive_at_each_month_start(history):
    churned, alive = rows(m.CHURNED), rows(m.NOT_CHURNED_AT_START)
    # Ann: January 2025 then nothing for a year: churned 181 days later (5 July 2025);
    # the closed member's February purchase: churned in August 2025; Bo's January 2025:
    # in July 2025.
    assert churned == {datetime.date(2025, 7, 1): 2, datetime.date(2025, 8, 1): 1}
    assert alive[datetime.date(2025, 2, 1)] == 2  # Ann, Bo (the February buyer not yet)
    assert alive[datetime.date(2025, 7, 1)] == 3
    assert alive[datetime.date(2025, 8, 1)] == 1
    assert datetime.date(2025, 9, 1) not in alive
    assert alive[datetime.date(2026, 6, 1)] == 2  # Ann (January), Bo (March)


def test_a_second_run_writes_the_same_rows(history):
    before = sorted(
        Rollup.objects.values_list("metric", "period", "store_key", "tier_key", "dim", "value")
    )
    analytics_rollup(business_date=AS_OF)
    after = sorted(
        Rollup.objects.values_list("metric", "period", "store_key", "tier_key", "dim", "value")
    )
    assert after == before


def test_a_member_of_no_store_counts_once_in_all_stores(shops):
    online = member(enrolled="2026-01-02", store=None)
    buy(online, store=shops[0], day="2026-02-01", amount="100", receipt="O1")
    analytics_rollup(business_date=AS_OF)
    assert rows(m.MEMBERS_NEW) == {datetime.date(2026, 1, 1): 1}
    assert rows(m.COHORT_SIZE) == {datetime.date(2026, 1, 1): 1}
    assert rows(m.POINTS_OUTSTANDING) == {AS_OF: Account.objects.get(member=online).balance}
    assert rows(m.MEMBERS_NEW, store=-1) == {datetime.date(2026, 1, 1): 1}


def test_a_member_who_churns_on_the_first_counts_in_that_month(shops):
    # Last purchases on 1 and 2 January 2025: churned 181 days later, on 1 and 2 July.
    for n, day in enumerate(("2025-01-01", "2025-01-02")):
        who = member(enrolled="2024-12-01", store=shops[0])
        buy(who, store=shops[0], day=day, amount="10", receipt=f"F{n}")
    analytics_rollup(business_date=AS_OF)
    july = datetime.date(2025, 7, 1)
    assert rows(m.CHURNED) == {july: 2}
    # Both were alive at the end of 30 June, so both are the base of July's churn rate.
    assert rows(m.NOT_CHURNED_AT_START)[july] == 2


def test_a_member_merge_issues_no_points_twice(shops):
    from points.services import member_merge
    from tests.conftest import make_role_user

    kept = member(enrolled="2025-01-01", store=shops[0])
    duplicate = member(enrolled="2025-01-01", store=shops[0])
    buy(kept, store=shops[0], day="2026-03-01", amount="100", receipt="K1")
    buy(duplicate, store=shops[0], day="2026-03-02", amount="50", receipt="D1")
    member_merge(
        source=duplicate, target=kept, actor=make_role_user("administrator"), now=at("2026-04-01")
    )
    analytics_rollup(business_date=AS_OF)
    march = datetime.date(2026, 3, 1)
    earned = sum(
        lot.points
        for lot in Lot.objects.filter(account__member__isnull=False, transaction__kind="earn")
    )
    assert rows(m.LOT_ISSUED) == {march: earned}
    assert rows(m.LOT_OPEN) == {march: earned}
    # The flows leave the merge out and still add up to what the members hold.
    held = sum(a.balance for a in Account.objects.filter(member__isnull=False))
    issued = sum(rows(m.POINTS_ISSUED).values()) + sum(rows(m.POINTS_OTHER).values())
    assert issued == held
