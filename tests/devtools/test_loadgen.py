"""`manage.py loadgen` and `manage.py bench ledger`, at small sizes."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from devtools.loadgen import loadgen as points_loadgen
from members.models import Member
from members.numbers import member_no_is_valid
from points.earning import earning_rules
from points.jobs import reconcile_job
from points.ledger import expiry_for
from points.models import Account, Entry, LedgerTransaction, Lot, Purchase
from points.posting import MemberFacts, birthday_month_of, purchase_fingerprint, purchase_plan
from tiers.models import MemberTier, QualifyingActivity, TierHistory
from tiers.selectors import (
    Figures,
    business_date,
    months_before,
    qualified_level,
    tier_levels,
    validity_end,
)


def loadgen(*args: str) -> str:
    out = StringIO()
    call_command("loadgen", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def assert_consistent(*, members: int, purchases: int) -> None:
    """What the product relies on, whichever path made the data."""
    assert Member.objects.count() == members
    assert Account.objects.filter(kind=Account.Kind.MEMBER).count() == members
    assert Purchase.objects.count() == purchases
    assert QualifyingActivity.objects.count() == purchases
    earning = Purchase.objects.filter(points_earned__gt=0)
    assert LedgerTransaction.objects.filter(kind="earn").count() == earning.count()
    assert Entry.objects.count() == 2 * earning.count()
    assert Lot.objects.count() == earning.count()
    assert all(member_no_is_valid(no) for no in Member.objects.values_list("member_no", flat=True))
    assert Member.objects.values("phone").distinct().count() == members
    # Each purchase's earning: its key, its fingerprint, its lot expiring as the ledger says.
    rules = earning_rules()
    levels = tier_levels()
    for purchase in Purchase.objects.select_related("member", "store", "earn_transaction")[:50]:
        # As a till would have sent it, occurred_at in UTC.
        request = purchase_fingerprint(
            member_no=purchase.member.member_no,
            store_code=purchase.store.code,
            receipt_no=purchase.receipt_no,
            occurred_iso=purchase.occurred_at.astimezone(datetime.UTC).isoformat(),
            amount_text=str(purchase.amount),
            channel=purchase.channel,
            lines=(),
            points_to_use=0,
        )
        assert purchase.fingerprint == request
        txn = purchase.earn_transaction
        assert txn.idempotency_key == f"purchase:{purchase.store.code}:{purchase.receipt_no}"
        assert (txn.fingerprint, txn.member_amount) == (request, purchase.points_earned)
        # Points: the posting plan's, for a member at the base level (their history precedes
        # any tier they hold now).
        plan = purchase_plan(
            member=MemberFacts(
                member_id=purchase.member_id,
                member_no=purchase.member.member_no,
                birthday_month=birthday_month_of(purchase.member.birthday),
                tier_multiplier=levels[0].earn_multiplier,
            ),
            store_id=purchase.store_id,
            store_code=purchase.store.code,
            receipt_no=purchase.receipt_no,
            channel=purchase.channel,
            occurred_at=purchase.occurred_at,
            occurred_iso=purchase.occurred_at.astimezone(datetime.UTC).isoformat(),
            amount=purchase.amount,
            rules=rules,
        )
        assert (purchase.points_earned, purchase.fingerprint) == (plan.points, plan.fingerprint)
        lot = txn.lots.get()
        assert lot.expires_at == expiry_for(purchase.occurred_at)
        assert lot.points == lot.remaining == purchase.points_earned
    # Tiers: the level the last 12 months qualify for, reached at the purchase that made it.
    levels = tier_levels()
    since = months_before(timezone.now(), 12)
    for member in Member.objects.all()[:60]:
        rows = QualifyingActivity.objects.filter(member=member, occurred_at__gt=since)
        level = qualified_level(
            levels=levels,
            figures=Figures(
                spend=sum((row.spend for row in rows), Decimal(0)),
                points=sum(row.points for row in rows),
            ),
        )
        status = MemberTier.objects.filter(member=member).first()
        if level == levels[0]:
            assert status is None
            continue
        assert status.level_id == level.pk
        assert status.period_start == status.achieved_at
        assert status.valid_until == validity_end(
            first_day=business_date(status.achieved_at), months=12
        )
        history = TierHistory.objects.get(member=member)
        assert (history.reason, history.to_level_id) == ("import", level.pk)
    _checked, details = reconcile_job(timezone.localdate())
    assert "failed" not in details, details


@pytest.mark.django_db
def test_loadgen_builds_members_and_purchases_that_reconcile():
    output = loadgen("--members", "50", "--purchases", "400", "--seed", "7")
    assert "Created 50 members and 400 purchases" in output
    assert Member.objects.count() == 50
    assert Account.objects.filter(kind=Account.Kind.MEMBER).count() == 50
    assert Purchase.objects.count() == 400
    member = Member.objects.first()
    assert member.phone.startswith("+861")
    assert len(member.member_no) == 12
    # Every purchase that earned has its transaction and lot; points follow the policy.
    earning = Purchase.objects.exclude(earn_transaction=None)
    assert earning.count() == LedgerTransaction.objects.filter(source="purchase").count()
    assert Lot.objects.count() == earning.count()
    for purchase in Purchase.objects.filter(lines__category="")[:20]:
        assert purchase.points_earned in (int(purchase.amount), int(purchase.amount * 2))
    _checked, details = reconcile_job(timezone.localdate())
    assert "failed" not in details
    assert_consistent(members=50, purchases=400)


@pytest.mark.django_db
def test_about_a_quarter_of_the_members_are_silver_or_above():
    loadgen("--members", "400", "--purchases", "4000", "--seed", "3")
    share = MemberTier.objects.count() / 400
    assert 0.15 < share < 0.35


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_database_generated_data_is_consistent():
    output = loadgen("--members", "300", "--purchases", "3000", "--seed", "5")
    assert "Created 300 members and 3,000 purchases" in output
    assert "Reconcile: 305 accounts balance." in output
    assert_consistent(members=300, purchases=3000)
    # An append continues the numbers, phones and receipts without a clash.
    loadgen("--members", "100", "--purchases", "500", "--append")
    assert_consistent(members=400, purchases=3500)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_load_with_the_indexes_rebuilt_leaves_the_schema_as_it_was():
    def schema() -> list[tuple[str, ...]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
            indexes = cursor.fetchall()
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), "
                "condeferrable, condeferred, convalidated FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            )
            return indexes + cursor.fetchall()

    before = schema()
    result = points_loadgen(members=200, purchases=2000, seed=9, rebuild_indexes=True)
    assert (result.members, result.purchases) == (200, 2000)
    assert schema() == before
    # The rebuild's settings stay with it; the caller's connection keeps its own.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_parallel_maintenance_workers')")
        assert cursor.fetchone()[0] != "0"
    assert_consistent(members=200, purchases=2000)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_load_with_the_indexes_rebuilt_keeps_the_index_the_guard_looks_entries_up_in(
    monkeypatch,
):
    """The guard against a transaction without entries (points migration 0029) looks each
    chunk's transactions up in points_entry_one_per_account; without it, it would hash every
    entry loaded so far, once per chunk. The others are dropped for the load as before."""
    from devtools import loadgen as module

    seen: list[set[str]] = []
    write = module.SqlLoad._chunk_write

    def write_and_look(self, chunk):
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'points_entry'")
            seen.append({name for (name,) in cursor.fetchall()})
        return write(self, chunk)

    monkeypatch.setattr(module.SqlLoad, "_chunk_write", write_and_look)
    points_loadgen(members=200, purchases=2000, seed=4, rebuild_indexes=True, workers=1)
    assert seen
    assert all(names == {"points_entry_one_per_account"} for names in seen), seen
    assert_consistent(members=200, purchases=2000)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_that_points_at_nothing_fails_the_load_naming_its_foreign_key(monkeypatch):
    """The foreign keys dropped for the load come back NOT VALID and are then validated over
    every loaded row: one that points at nothing is found, and the load says which key."""
    from devtools import loadgen as module

    run = module.SqlLoad._run_chunks

    def run_and_break(self, chunks):
        run(self, chunks)
        with connection.cursor() as cursor:  # the keys of the bulk tables are dropped now
            cursor.execute(
                "INSERT INTO tiers_qualifyingactivity (member_id, occurred_at, spend, points, "
                "source) VALUES (-1, now(), 0, 0, 'purchase')"
            )

    monkeypatch.setattr(module.SqlLoad, "_run_chunks", run_and_break)
    with pytest.raises(module.LoadgenCheckFailed, match="tiers_qualifyingacti_member_id"):
        points_loadgen(members=50, purchases=300, seed=3, rebuild_indexes=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE contype = 'f' AND NOT convalidated")
        # Left NOT VALID: rows written from now on are checked all the same.
        assert [name for (name,) in cursor.fetchall()] == [
            "tiers_qualifyingacti_member_id_6db453fb_fk_members_m"
        ]
        cursor.execute("DELETE FROM tiers_qualifyingactivity WHERE member_id = -1")
        cursor.execute(
            "ALTER TABLE tiers_qualifyingactivity VALIDATE CONSTRAINT "
            "tiers_qualifyingacti_member_id_6db453fb_fk_members_m"
        )
    assert_consistent(members=50, purchases=300)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_index_that_cannot_be_rebuilt_is_named_and_the_others_are_built(monkeypatch):
    from devtools import loadgen as module

    drop = module.SqlLoad._indexes_drop
    broken = "CREATE INDEX loadgen_broken ON no_such_table (id)"

    def drop_and_break(self):
        rounds = drop(self)
        return [[broken, *rounds[0]], *rounds[1:]]

    monkeypatch.setattr(module.SqlLoad, "_indexes_drop", drop_and_break)
    with pytest.raises(module.LoadgenCheckFailed, match="no_such_table"):
        points_loadgen(members=50, purchases=300, seed=3, rebuild_indexes=True)
    # Everything else is back: the idempotency key is unique again, the data consistent.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_constraint WHERE conname = 'points_txn_idempotency_key_unique'"
        )
        assert cursor.fetchone() == (1,)
    assert_consistent(members=50, purchases=300)


@pytest.mark.django_db
def test_loadgen_refuses_a_database_with_members_unless_appending():
    loadgen("--members", "5")
    with pytest.raises(CommandError, match="--append"):
        loadgen("--members", "5")
    loadgen("--members", "5", "--purchases", "10", "--append")
    assert Member.objects.count() == 10


@pytest.mark.django_db(transaction=True)
def test_bench_ledger_prints_one_json_line_last():
    out = StringIO()
    call_command(
        "bench", "ledger", "--writers", "1", "--seconds", "1", "--load-members", "20",
        stdout=out, stderr=StringIO(),
    )  # fmt: skip
    lines = [json.loads(line) for line in out.getvalue().strip().splitlines()]
    assert [line["variant"] for line in lines] == [
        "promotion",
        "cashier",
        "points_payment",
        "plain",
    ]
    for result in lines:
        assert set(result) == {
            "variant",
            "purchases_per_s",
            "p50_ms",
            "p95_ms",
            "writers",
            "members",
        }
        assert result["purchases_per_s"] > 0, result
        assert result["members"] == 20
    # Each variant did what it says: a promotion doubled, a cashier recorded, points paid.
    assert Purchase.objects.filter(recorded_by__isnull=False).exists()
    assert Purchase.objects.filter(points_used__gt=0).exists()
    assert Purchase.objects.filter(receipt_no__startswith="B").count() > 0
    _checked, details = reconcile_job(timezone.localdate())
    assert "failed" not in details


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_bench_ledger_with_writer_processes_on_postgres():
    out, err = StringIO(), StringIO()
    call_command(
        "bench", "ledger", "--writers", "2", "--seconds", "3", "--load-members", "50",
        stdout=out, stderr=err,
    )  # fmt: skip
    lines = [json.loads(line) for line in out.getvalue().strip().splitlines()]
    assert [line["variant"] for line in lines][-1] == "plain"
    result = lines[-1]
    assert result["writers"] == 2
    assert all(line["purchases_per_s"] > 0 for line in lines), (lines, err.getvalue())
    assert result["purchases_per_s"] > 0, err.getvalue()
    _checked, details = reconcile_job(timezone.localdate())
    assert "failed" not in details
