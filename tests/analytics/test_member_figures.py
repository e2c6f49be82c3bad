"""The per-member figures on a worked example (ANALYTICS.md: net spend, RFM, lifecycle)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from analytics.figures import member_figures_write
from analytics.models import MemberFigures
from analytics.rfm import RFM_CELLS, rfm_cell_case_sql, rfm_cell_of
from members.models import Member
from points.selectors import points_balance
from tiers.selectors import tier_levels

from .history import at, buy, give_back, member

AS_OF = datetime.date(2026, 6, 30)


@pytest.fixture
def history(store):
    a = member(enrolled="2025-01-01", store=store)
    buy(a, store=store, day="2026-01-10", amount="50", receipt="A1")
    buy(a, store=store, day="2026-06-01", amount="200", receipt="A2")
    buy(a, store=store, day="2026-06-29", amount="100", receipt="A3")
    give_back(store=store, receipt="R-A2", day="2026-06-20", amount="40", original="A2")
    b = member(enrolled="2025-01-01", store=store)
    buy(b, store=store, day="2026-03-01", amount="500", receipt="B1")
    c = member(enrolled="2026-06-20", store=store)
    buy(c, store=store, day="2026-06-21", amount="30", receipt="C1")
    d = member(enrolled="2025-01-01", store=store)
    e = member(enrolled="2024-01-01", store=store)
    buy(e, store=store, day="2025-06-01", amount="80", receipt="E1")
    f = member(enrolled="2026-06-25", store=store)
    # After the day: counts for nothing as of AS_OF.
    buy(b, store=store, day="2026-07-01", amount="999", receipt="B2", hour=0)
    closed = member(enrolled="2025-01-01", store=store, status=Member.Status.CLOSED)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "closed": closed}


def figures_of(m) -> MemberFigures:
    return MemberFigures.objects.get(member=m)


def test_orders_and_net_spend_count_each_window_of_business_days(history):
    assert member_figures_write(as_of=AS_OF) == 6
    a = figures_of(history["a"])
    assert (a.orders_30, a.orders_90, a.orders_365, a.orders_total) == (2, 2, 3, 3)
    # The ¥40 return on 20 June lowers every window it falls in.
    assert a.net_spend_30 == Decimal("260.00")
    assert a.net_spend_365 == a.net_spend_total == Decimal("310.00")
    assert a.first_purchase_at == at("2026-01-10")
    assert a.last_purchase_at == at("2026-06-29")
    # 10 January to 29 June is 170 days, over two gaps.
    assert a.avg_days_between == Decimal("85.0")
    assert a.balance == points_balance(member=history["a"]).total
    assert a.store_key == history["a"].home_store_id
    assert a.tier_key == tier_levels()[0].pk
    b = figures_of(history["b"])
    assert (b.orders_365, b.net_spend_365, b.avg_days_between) == (1, Decimal("500.00"), None)


def test_lifecycle_stages_follow_the_days_since_the_last_purchase(history):
    member_figures_write(as_of=AS_OF)
    stages = {key: figures_of(m).stage for key, m in history.items() if key != "closed"}
    assert stages == {
        "a": "active",  # 1 day
        "b": "silent",  # 121 days
        "c": "new",  # enrolled 10 days ago, one purchase
        "d": "never",
        "e": "churned",  # 394 days
        "f": "new",
    }
    assert not MemberFigures.objects.filter(member=history["closed"]).exists()


def test_rfm_scores_are_quintiles_with_ties_sharing_a_score(history):
    member_figures_write(as_of=AS_OF)
    scores = {
        key: (f.r_score, f.f_score, f.m_score, f.rfm_cell)
        for key in "abcde"
        for f in [figures_of(history[key])]
    }
    # Scored: a, b, c (a purchase in the last 365 days). n = 3, score = 1 + 5(rank-1) div 3.
    # R by days since (fewest best): b 121 → 1, c 9 → 2, a 1 → 4.
    # F by orders: b and c tie at 1 → 1 and 1, a 3 → 4. M: c 30 → 1, a 310 → 2, b 500 → 4.
    assert scores == {
        "a": (4, 4, 2, "loyal"),
        "b": (1, 1, 4, "cant_lose"),
        "c": (2, 1, 1, "hibernating"),
        "d": (None, None, None, ""),
        "e": (None, None, None, ""),
    }


def test_a_second_run_for_the_day_changes_nothing_and_keeps_the_churn_score(history):
    member_figures_write(as_of=AS_OF)
    MemberFigures.objects.filter(member=history["a"]).update(
        churn_probability=0.25, churn_band="low"
    )
    before = list(MemberFigures.objects.order_by("member_id").values())
    member_figures_write(as_of=AS_OF, now=before[0]["updated_at"])
    assert list(MemberFigures.objects.order_by("member_id").values()) == before
    a = figures_of(history["a"])
    assert (a.churn_probability, a.churn_band) == (0.25, "low")


def test_a_member_closed_since_loses_the_row(history):
    member_figures_write(as_of=AS_OF)
    Member.objects.filter(pk=history["d"].pk).update(status=Member.Status.CLOSED)
    member_figures_write(as_of=AS_OF)
    assert not MemberFigures.objects.filter(member=history["d"]).exists()


def test_every_score_combination_has_exactly_one_cell_and_sql_agrees(db):
    from django.db import connection

    combos = [(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]
    for r, f, m in combos:
        matches = [
            c
            for c in RFM_CELLS
            if c.r[0] <= r <= c.r[1] and c.f[0] <= f <= c.f[1] and c.m[0] <= m <= c.m[1]
        ]
        assert len(matches) == 1, (r, f, m)
    case = rfm_cell_case_sql(r="r", f="f", m="m")
    values = " UNION ALL ".join(f"SELECT {r} AS r, {f} AS f, {m} AS m" for r, f, m in combos)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT r, f, m, {case} FROM ({values}) t")
        rows = cursor.fetchall()
    assert {(r, f, m): cell for r, f, m, cell in rows} == {
        combo: rfm_cell_of(r=combo[0], f=combo[1], m=combo[2]).code for combo in combos
    }
