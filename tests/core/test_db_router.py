"""Analytics reads move to the replica when there is one; writes and the ledger never do.

The `replica` alias of these tests is a second connection to the test database, as a
streaming replica is a second server holding the primary's committed rows: it sees what
the primary has committed, so the tests that use it commit (transaction=True). Which alias
served a query is read from each connection's own query log.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext

from analytics import metrics as m
from analytics.models import ChurnModel, MemberFigures, Rollup
from analytics.services import analytics_rollup
from core.db import REPLICA, analytics_read_alias
from members.models import Member
from points.models import Purchase
from tests.factories import StoreFactory

from ..analytics.history import buy, member

ROOT = Path(__file__).resolve().parent.parent.parent
DAY = datetime.date(2026, 6, 30)


@pytest.fixture(scope="class")
def replica(django_db_setup) -> Iterator[None]:
    """A `replica` alias for one class of tests: another connection to the test database.

    Class-scoped, so the alias exists before pytest-django opens a test's databases (it
    allows a test only the aliases its marker names, and those must exist by then). Run
    with DATABASE_REPLICA_URL set, the test settings' mirror is that alias already."""
    if REPLICA in connections:
        yield
        return
    connections.settings[REPLICA] = {
        **connections["default"].settings_dict,
        "TEST": {**connections["default"].settings_dict["TEST"], "MIRROR": "default"},
    }
    try:
        yield
    finally:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]


@pytest.fixture
def no_replica() -> Iterator[None]:
    """No `replica` alias, even when the tests run with DATABASE_REPLICA_URL set."""
    configured = connections.settings.pop(REPLICA, None)
    try:
        yield
    finally:
        if configured is not None:
            connections.settings[REPLICA] = configured


@contextmanager
def queries_on(*aliases: str) -> Iterator[dict[str, list[str]]]:
    """The SQL each alias ran inside the block, lower-cased."""
    contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in aliases}
    ran: dict[str, list[str]] = {}
    for context in contexts.values():
        context.__enter__()
    try:
        yield ran
    finally:
        for alias, context in contexts.items():
            context.__exit__(None, None, None)
            ran[alias] = [query["sql"].lower() for query in context.captured_queries]


def touching(queries: list[str], table: str) -> list[str]:
    return [sql for sql in queries if table in sql]


def rollup(metric: str = m.MEMBERS_TOTAL, value: str = "3") -> Rollup:
    return Rollup.objects.create(metric=metric, period=DAY, value=Decimal(value))


# Committing, like the tests with a replica: inside a test's transaction every read would
# stay on the primary anyway.
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_replica")
def test_without_a_replica_everything_reads_and_writes_the_primary():
    assert REPLICA not in connections
    with queries_on("default") as ran:
        rollup(value="3")
        assert Rollup.objects.get(metric=m.MEMBERS_TOTAL).value == 3

    assert analytics_read_alias() == "default"
    assert Rollup.objects.all().db == "default"
    for model in (Rollup, MemberFigures, ChurnModel, Member, Purchase):
        assert router.db_for_read(model) == "default"
        assert router.db_for_write(model) == "default"
    assert len(touching(ran["default"], "analytics_rollup")) == 2  # the insert, the read


@pytest.mark.usefixtures("replica")
@pytest.mark.django_db(transaction=True, databases=["default", REPLICA])
class TestWithAReplica:
    def test_dashboard_figures_are_read_from_the_replica(self):
        shop = StoreFactory(code="X01")
        alice = member(enrolled="2026-01-05", store=shop)
        with queries_on("default", REPLICA) as ran:
            rollup(value="3")
            figures = list(Rollup.objects.filter(metric=m.MEMBERS_TOTAL))
            assert not MemberFigures.objects.exists()
            assert ChurnModel.objects.count() == 0
            assert Member.objects.get(pk=alice.pk).member_no == alice.member_no

        assert [(r.period, r.value) for r in figures] == [(DAY, Decimal("3"))]
        assert figures[0]._state.db == REPLICA
        assert analytics_read_alias() == REPLICA
        on_replica = ran[REPLICA]
        assert len(on_replica) == 3
        assert on_replica[0].startswith("select") and "analytics_rollup" in on_replica[0]
        assert "analytics_memberfigures" in on_replica[1]
        assert "analytics_churnmodel" in on_replica[2]
        # The primary wrote the roll-up and served the member (the ledger's side never lags).
        on_default = ran["default"]
        assert [sql.split()[0] for sql in touching(on_default, "analytics_")] == ["insert"]
        assert touching(on_default, "members_member")[0].startswith("select")

    def test_a_figure_read_from_the_replica_is_changed_and_deleted_on_the_primary(self):
        rollup(value="3")
        figure = Rollup.objects.get(metric=m.MEMBERS_TOTAL)
        assert figure._state.db == REPLICA

        with queries_on("default", REPLICA) as ran:
            figure.value = Decimal("4")
            figure.save()
            assert Rollup.objects.get(pk=figure.pk).value == 4
            Rollup.objects.filter(metric=m.MEMBERS_TOTAL).delete()
            assert not Rollup.objects.filter(metric=m.MEMBERS_TOTAL).exists()

        writes = [sql.split()[0] for sql in touching(ran["default"], "analytics_rollup")]
        assert writes == ["update", "delete"]
        assert all(sql.startswith("select") for sql in ran[REPLICA])
        assert len(ran[REPLICA]) == 2

    def test_reads_inside_a_transaction_on_the_primary_stay_on_the_primary(self):
        with queries_on("default", REPLICA) as ran, transaction.atomic():
            rollup(value="5")
            # Not committed yet: only the primary has the row.
            assert Rollup.objects.get(metric=m.MEMBERS_TOTAL).value == 5
            assert analytics_read_alias() == "default"

        assert ran[REPLICA] == []
        assert analytics_read_alias() == REPLICA

    def test_the_nightly_job_writes_and_rereads_its_figures_on_the_primary(self):
        shop = StoreFactory(code="X01")
        alice = member(enrolled="2026-01-05", store=shop)
        buy(alice, store=shop, day="2026-06-01", amount="100", receipt="A1")
        bob = member(enrolled="2026-02-05", store=shop)

        with queries_on("default", REPLICA) as ran:
            analytics_rollup(business_date=DAY)
            # Run again: the second run deletes the first run's rows, on the primary.
            analytics_rollup(business_date=DAY)

        assert ran[REPLICA] == []
        assert touching(ran["default"], "delete from")
        # What the dashboards then read, from the replica.
        assert MemberFigures.objects.filter(member__in=[alice, bob]).count() == 2
        totals = Rollup.objects.filter(
            metric=m.MEMBERS_TOTAL, store_key=0, tier_key=0, period=DAY.replace(day=1)
        )
        assert [r.value for r in totals] == [2]  # June's members: Alice and Bob
        assert totals.db == REPLICA

    def test_figures_from_the_replica_lead_to_their_member_on_the_primary(self):
        shop = StoreFactory(code="X01")
        alice = member(enrolled="2026-01-05", store=shop)
        analytics_rollup(business_date=DAY)
        figures = MemberFigures.objects.get(member=alice)

        with queries_on("default", REPLICA) as ran:
            assert figures.member.member_no == alice.member_no

        assert figures._state.db == REPLICA
        assert router.allow_relation(figures, alice)
        assert touching(ran["default"], "members_member")
        assert ran[REPLICA] == []

    def test_only_the_primary_is_migrated(self):
        for app_label in ("analytics", "points", "members"):
            assert router.allow_migrate("default", app_label)
            assert not router.allow_migrate(REPLICA, app_label)


def settings_databases(**environ: str) -> dict:
    """DATABASES as production settings build them from these environment variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "CONN_"))
    }
    env.update({"SECRET_KEY": "x" * 50, **environ})
    script = (
        "import json; from loyalty_site.settings import base; "
        "print(json.dumps(base.DATABASES, default=str))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_replica_url_adds_a_replica_with_the_primarys_connection_options():
    databases = settings_databases(
        DATABASE_URL="postgres://loyalty:secret@primary:5432/loyalty",
        DATABASE_REPLICA_URL="postgres://reader:secret@standby:5432/loyalty",
        CONN_MAX_AGE="120",
        DATABASE_PREPARE_THRESHOLD="5",
    )

    primary, replica = databases["default"], databases["replica"]
    assert (replica["HOST"], replica["USER"], replica["NAME"]) == ("standby", "reader", "loyalty")
    assert primary["HOST"] == "primary"
    for key in ("ENGINE", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "OPTIONS", "ATOMIC_REQUESTS"):
        assert replica[key] == primary[key], key
    assert replica["CONN_MAX_AGE"] == 120
    assert replica["OPTIONS"] == {"prepare_threshold": 5}
    assert replica["CONN_HEALTH_CHECKS"] is True


def test_without_the_replica_url_there_is_only_the_primary():
    databases = settings_databases(DATABASE_URL="postgres://loyalty:secret@primary:5432/loyalty")

    assert list(databases) == ["default"]
