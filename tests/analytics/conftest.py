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
