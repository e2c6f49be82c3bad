"""The purchase import on PostgreSQL with two writers side by side, each on its own connection
(committed data only, so these tests run outside a test transaction)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from core.imports import import_file
from core.models import ImportRun
from points.jobs import reconcile_job
from points.models import (
    Account,
    Category,
    CategoryRate,
    Entry,
    LedgerTransaction,
    Lot,
    Purchase,
)
from tests.factories import MemberFactory, StoreFactory
from tests.points.test_import_balances import bad_values_file as balances_bad_values_file
from tests.points.test_import_purchases import BAD_VALUE_PROBLEMS as PURCHASE_PROBLEMS
from tests.points.test_import_purchases import bad_values_file as purchases_bad_values_file
from tests.points.test_import_purchases import problems_of, snapshot
from tiers.models import QualifyingActivity

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_writers_post_every_purchase_once_and_a_rerun_adds_nothing(monkeypatch):
    # Small batches, so each writer commits several.
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 7)
    StoreFactory(code="SH001", name="上海南京路店", city="上海")
    StoreFactory(code="BJ001", name="北京王府井店", city="北京")
    members = MemberFactory.create_batch(25)
    frozen = MemberFactory(status="frozen")
    Category.objects.create(code="cosmetics", name_zh="美妆", name_en="Cosmetics")
    CategoryRate.objects.create(category="cosmetics", rate=Decimal("2"))
    lines = ["store,receipt_no,member_no,phone,occurred_at,amount,category"]
    for i in range(120):
        member = members[i % len(members)]
        # Every third row names its member by phone, so one member may reach both writers.
        who = f",{member.phone}" if i % 3 == 0 else f"{member.member_no},"
        lines.append(
            f"{'SH001' if i % 2 else 'BJ001'},P{i:04d},{who},2026-04-{i % 28 + 1:02d}T10:00:00,"
            f"{i % 50 + 1}.50,{'cosmetics' if i % 4 == 0 else ''}"
        )
    lines.append("SH001,BAD1,M999999999,,2026-04-10T10:00:00,10,")  # line 122
    lines.append(f"SH001,BAD2,{frozen.member_no},,2026-04-10T10:00:00,10,")  # line 123
    content = ("\n".join(lines) + "\n").encode()

    first = import_file(kind="purchases", file_name="p.csv", content=content, writers=2)
    assert first.status == ImportRun.Status.DONE
    assert (first.processed_rows, first.created_count, first.bad_count) == (122, 120, 2)
    assert {(e.line, e.code) for e in first.errors.all()} == {
        (122, "member_unknown"),
        (123, "member_inactive"),
    }
    assert Purchase.objects.count() == LedgerTransaction.objects.count() == 120
    assert Entry.objects.count() == 240
    assert Lot.objects.count() == QualifyingActivity.objects.count() == 120
    assert first.points_posted == sum(Purchase.objects.values_list("points_earned", flat=True))
    for member in members:
        earned = sum(Purchase.objects.filter(member=member).values_list("points_earned", flat=True))
        assert Account.objects.get(member=member).balance == earned
    _checked, details = reconcile_job(datetime.date(2026, 6, 1))
    assert "failed" not in details

    before = snapshot()
    second = import_file(kind="purchases", file_name="p.csv", content=content, writers=2)
    assert (second.created_count, second.existing_count, second.bad_count) == (0, 120, 2)
    assert snapshot() == before


def test_opening_balances_go_through_the_same_two_writers(monkeypatch):
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 5)
    members = MemberFactory.create_batch(12)
    year = datetime.date.today().year + 1
    lines = ["source_id,member_no,points,expires_on"]
    lines += [f"OLD-{i},{members[i % 12].member_no},{i + 1},{year}-06-30" for i in range(40)]
    lines.append(f"OLD-X,M999999999,10,{year}-06-30")
    content = ("\n".join(lines) + "\n").encode()

    done = import_file(kind="balances", file_name="b.csv", content=content, writers=2)
    assert (done.created_count, done.bad_count, done.points_posted) == (40, 1, 820)
    assert Lot.objects.count() == LedgerTransaction.objects.count() == 40
    _checked, details = reconcile_job(datetime.date(2026, 6, 1))
    assert "failed" not in details


def test_bad_values_are_row_errors_on_the_two_writers_too(monkeypatch):
    # Every value COPY or a column would refuse is caught by the row checker first: the run
    # ends done, with the good rows of every batch written and each bad row reported.
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 3)
    StoreFactory(code="SH001")
    alice = MemberFactory(birthday=datetime.date(1990, 7, 1))
    bob = MemberFactory(birthday=datetime.date(1985, 3, 9))
    Category.objects.create(code="gold", name_zh="黄金", name_en="Gold")
    CategoryRate.objects.create(category="gold", rate=Decimal("9999.99"))
    content = purchases_bad_values_file(alice, bob).encode()

    done = import_file(kind="purchases", file_name="p.csv", content=content, writers=2)

    assert done.status == ImportRun.Status.DONE
    assert problems_of(done) == PURCHASE_PROBLEMS
    assert sorted(Purchase.objects.values_list("receipt_no", flat=True)) == ["V1", "V13", "V7"]
    _checked, details = reconcile_job(datetime.date(2026, 6, 1))
    assert "failed" not in details


def test_bad_balance_values_are_row_errors_on_the_two_writers_too(monkeypatch):
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 3)
    alice = MemberFactory()
    content = balances_bad_values_file(alice).encode()

    done = import_file(kind="balances", file_name="b.csv", content=content, writers=2)

    assert done.status == ImportRun.Status.DONE
    assert [(e.line, e.code) for e in done.errors.order_by("line")] == [
        (3, "earned_on_too_early"),
        (4, "earned_on_too_early"),
        (5, "expires_on_too_late"),
        (6, "earned_on_future"),
        (7, "points_invalid"),
        (8, "nul_character"),
        (9, "nul_character"),
        (10, "too_long"),
        (11, "field_too_long"),
    ]
    assert (done.created_count, done.points_posted) == (2, 300)
