"""Roll-up rows written by hand, as the nightly analytics job would leave them."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from analytics import metrics
from analytics.models import Rollup
from tests.conftest import make_role_user
from tests.factories import StoreFactory

AS_OF = datetime.date(2026, 3, 31)
JAN, FEB, MAR = datetime.date(2026, 1, 1), datetime.date(2026, 2, 1), datetime.date(2026, 3, 1)


def rollup(metric: str, period: datetime.date, value, *, store: int = 0, tier: int = 0, dim=""):
    return Rollup.objects.create(
        metric=metric,
        period=period,
        store_key=store,
        tier_key=tier,
        dim=dim,
        value=Decimal(str(value)),
    )


@pytest.fixture
def stores(db):
    return StoreFactory(code="SH001", name="上海南京路店"), StoreFactory(
        code="BJ001", name="北京店"
    )


@pytest.fixture
def figures(stores):
    """Members figures for all stores (0) and each store: store B's are 10x store A's, so a
    figure on a page says whose it is."""
    a, b = stores
    for key, scale in ((0, 11), (a.pk, 1), (b.pk, 10)):
        rollup(metrics.MEMBERS_TOTAL, FEB, 4000 * scale, store=key)
        rollup(metrics.MEMBERS_TOTAL, MAR, 4100 * scale, store=key)
        rollup(metrics.MEMBERS_NEW, MAR, 100 * scale, store=key)
        rollup(metrics.MEMBERS_ACTIVE, MAR, 1234 * scale, store=key)
        rollup(metrics.POINTS_OUTSTANDING, AS_OF, 100000 * scale, store=key)
        rollup(metrics.STAGE_MEMBERS, AS_OF, 70 * scale, store=key, dim="active")
        rollup(metrics.STAGE_MEMBERS, AS_OF, 30 * scale, store=key, dim="churned")
    return a, b


def login(client, role: str, *, stores=()):
    user = make_role_user(role, stores=stores)
    client.force_login(user)
    return user


def rollups_for_every_panel(*, store: int = 0) -> None:
    """A figure in every panel, as a run on 2026-03-31 would leave them (all stores/tiers)."""
    from tiers.models import TierLevel

    for month, scale in ((JAN, 1), (FEB, 2), (MAR, 3)):
        for metric, value in (
            (metrics.MEMBERS_TOTAL, 4000 + 100 * scale),
            (metrics.MEMBERS_NEW, 100 * scale),
            (metrics.MEMBERS_ACTIVE, 1200 + scale),
            (metrics.ORDERS, 200 * scale),
            (metrics.REVENUE, 30000 * scale),
            (metrics.RETURNS, 1000 * scale),
            (metrics.BUYERS, 150 * scale),
            (metrics.REPEAT_BUYERS, 40 * scale),
            (metrics.TIER_UP, 10 + scale),
            (metrics.TIER_DOWN, 3 * scale),
            (metrics.POINTS_ISSUED, 9000 * scale),
            (metrics.POINTS_REDEEMED, 4000 * scale),
            (metrics.POINTS_EXPIRED, 500 * scale),
            (metrics.LOT_ISSUED, 9000 * scale),
            (metrics.LOT_REDEEMED, 4000 * scale),
            (metrics.LOT_EXPIRED, 0),
            (metrics.LOT_OPEN, 5000 * scale),
            (metrics.COHORT_SIZE, 100 * scale),
            (metrics.CHURNED, 50 * scale),
            (metrics.NOT_CHURNED_AT_START, 3000),
        ):
            rollup(metric, month, value, store=store)
        for k in range(3 - (month.month - 1)):
            rollup(metrics.COHORT_ACTIVE, month, 50 * scale // (k + 1), store=store, dim=str(k))
            rollup(metrics.LOT_REDEEMED_BY_AGE, month, 1000 * scale, store=store, dim=str(k))
    rollup(metrics.POINTS_OUTSTANDING, AS_OF, 123456, store=store)
    for level in TierLevel.objects.order_by("rank"):
        rollup(metrics.TIER_MEMBERS, AS_OF, 1000 // level.rank, store=store, dim=level.code)
    for stage, value in (("new", 100), ("active", 1200), ("silent", 800), ("churned", 2000)):
        rollup(metrics.STAGE_MEMBERS, AS_OF, value, store=store, dim=stage)
    for r in range(1, 6):
        for f in range(1, 6):
            for m in (1, 3, 5):
                cell = f"{r}-{f}-{m}"
                rollup(metrics.RFM_MEMBERS, AS_OF, r * f + m, store=store, dim=cell)
                rollup(metrics.RFM_REVENUE, AS_OF, 100 * r * f * m, store=store, dim=cell)
    for band, value in (("high", 500), ("medium", 900), ("low", 2600)):
        rollup(metrics.CHURN_BAND_MEMBERS, AS_OF, value, store=store, dim=band)
    for decile in range(10):
        rollup(metrics.CHURN_DECILE_MEMBERS, AS_OF, 400 - 30 * decile, store=store, dim=str(decile))
