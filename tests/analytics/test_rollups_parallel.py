"""On PostgreSQL the roll-ups are read on two connections at once: the same rows as one."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from analytics import rollups
from analytics.figures import member_figures_write
from analytics.models import Rollup
from tests.factories import StoreFactory

from .history import buy, give_back, member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def snapshot():
    return sorted(
        Rollup.objects.values_list("metric", "period", "store_key", "tier_key", "dim", "value")
    )


def test_two_connections_write_the_rows_one_connection_writes(monkeypatch):
    x, y = StoreFactory(code="PX1"), StoreFactory(code="PY1")
    for n in range(6):
        who = member(enrolled=f"2025-0{1 + n % 6}-01", store=(x, y)[n % 2])
        buy(who, store=x, day=f"2025-0{2 + n % 6}-03", amount=f"{10 + n}", receipt=f"P{n}a")
        buy(who, store=y, day="2026-05-10", amount="88", receipt=f"P{n}b")
    give_back(store=y, receipt="R1", day="2026-05-20", amount="8", original="P1b")
    as_of = datetime.date(2026, 6, 30)
    member_figures_write(as_of=as_of)
    assert not connection.in_atomic_block
    rollups.rollups_write(as_of=as_of)
    parallel = snapshot()
    monkeypatch.setattr(rollups, "ROLLUP_WORKERS", 1)
    rollups.rollups_write(as_of=as_of)
    assert snapshot() == parallel
    assert any(row[0] == "buyers" for row in parallel)
