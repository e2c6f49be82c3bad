"""A batch of history postings is written with COPY (`points.posting.copy`) and stores, row
for row, what the one set-based statement (`PgStatement`) stores for the same batch.

Each batch is written twice in the same database state, once by each writer (the other
write rolled back), with the clock standing still, and every row it leaves behind is
compared: purchases, lines (in id order), tier activity, the ledger's rows and figures.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from core.imports import import_file
from points.earning import earning_rules
from points.models import (
    Account,
    Category,
    CategoryRate,
    Entry,
    LedgerTransaction,
    Lot,
    Purchase,
    PurchaseLine,
)
from points.posting import MemberFacts, PlannedLine, purchase_plan, writers
from tests.factories import MemberFactory, StoreFactory, UserFactory
from tiers.models import QualifyingActivity

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 20, 12, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)


class _RolledBack(Exception):
    pass


def snapshot() -> dict[str, Any]:
    """Every row a history batch may write, without the ids drawn (the purchases' ids are
    replaced by their receipt, and kept in order)."""
    purchases = list(Purchase.objects.order_by("id").values())
    receipt = {row["id"]: row["receipt_no"] for row in purchases}
    for row in purchases:
        del row["id"]
    lines = [
        {**row, "purchase_id": receipt[row["purchase_id"]]}
        for row in PurchaseLine.objects.order_by("id").values(
            "purchase_id", "sku", "category", "quantity", "amount"
        )
    ]
    return {
        "purchases": purchases,
        "lines": lines,
        "activity": list(
            QualifyingActivity.objects.order_by("id").values_list(
                "member_id", "occurred_at", "spend", "points", "source"
            )
        ),
        "ledger": (
            LedgerTransaction.objects.count(),
            Entry.objects.count(),
            Lot.objects.count(),
            sorted(Account.objects.values_list("id", "balance", "debt", "lifetime_earned")),
        ),
    }


def written_both_ways(monkeypatch, write) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(what the statement stored, what COPY stored, the writers used) for `write()`, each
    run from the same database state."""
    used: list[str] = []
    copy = writers.postings_copy
    run = writers.PgStatement.run

    def copy_spy(*args, **kwargs):
        used.append("copy")
        return copy(*args, **kwargs)

    def statement_spy(self, *args, **kwargs):
        used.append("statement")
        return run(self, *args, **kwargs)

    monkeypatch.setattr(writers, "postings_copy", copy_spy)
    monkeypatch.setattr(writers.PgStatement, "run", statement_spy)
    found = []
    for use_copy in (False, True):
        with monkeypatch.context() as patch:
            if not use_copy:
                patch.setattr(writers, "copy_writable", lambda batch: False)
            try:
                with transaction.atomic():
                    write()
                    found.append(snapshot())
                    raise _RolledBack
            except _RolledBack:
                pass
    return found[0], found[1], used


@pytest.fixture
def shop():
    Category.objects.create(code="gold", name_zh="黄金", name_en="Gold")
    Category.objects.create(code="tobacco", name_zh="烟草", name_en="Tobacco")
    CategoryRate.objects.create(category="gold", rate=Decimal("2.5"))
    CategoryRate.objects.create(category="tobacco", rate=Decimal("0"))
    return StoreFactory(code="SH001"), StoreFactory(code="BJ001")


def history_batch(shop) -> list:
    sh, bj = shop
    rules = earning_rules()
    alice = MemberFactory(birthday=datetime.date(1990, 3, 1))
    bob = MemberFactory()
    line = PlannedLine
    rows = [
        (alice, sh, "H1", "store", "128.50", ()),
        (bob, bj, "H2", "online", "300.00", (line("LIP01", "gold", Decimal(1), Decimal("300")),)),
        (alice, sh, "H3", "app", "99.99", (line("", "tobacco", Decimal(1), Decimal("99.99")),)),
        # Text COPY must escape, and one that needs none.
        (
            bob,
            sh,
            'H\\4\t"x",y',
            "store",
            "10.00",
            (line("a\tb\\c\nd", "", Decimal(1), Decimal("10.00")),),
        ),
        (
            alice,
            bj,
            "收据-5",
            "mini_program",
            "200000.00",
            (line("茶叶", "", Decimal("2.5"), Decimal("1.00")),),
        ),
    ]
    return [
        purchase_plan(
            member=MemberFacts(member_id=member.pk, member_no=member.member_no, birthday_month=3),
            store_id=store.pk,
            store_code=store.code,
            receipt_no=receipt,
            channel=channel,
            occurred_at=NOW - datetime.timedelta(days=40 * index, minutes=index),
            amount=Decimal(amount),
            lines=lines,
            rules=rules,
            history=True,
        )
        for index, (member, store, receipt, channel, amount, lines) in enumerate(rows)
    ]


def test_a_history_batch_written_with_copy_stores_what_the_statement_stores(shop, monkeypatch):
    batch = history_batch(shop)
    cashier = UserFactory()
    answers: list = []

    def write():
        answers.append(
            writers.postings_write(postings=batch, now=NOW, actor=cashier, upgrades=False)
        )

    by_statement, by_copy, used = written_both_ways(monkeypatch, write)

    assert used == ["statement", "copy"]
    assert by_copy == by_statement
    assert len(by_copy["purchases"]) == 5
    assert len(by_copy["lines"]) == 4
    assert by_copy["purchases"][3]["receipt_no"] == 'H\\4\t"x",y'
    assert by_copy["lines"][2]["sku"] == "a\tb\\c\nd"
    assert {row["recorded_by_id"] for row in by_copy["purchases"]} == {cashier.pk}
    # Both answer the purchases' ids in batch order, with no earning transaction.
    for statement_answers in answers:
        assert [a.outcome for a in statement_answers] == ["created"] * 5
        ids = [a.purchase_id for a in statement_answers]
        assert ids == sorted(ids)
        assert {a.earn_transaction_id for a in statement_answers} == {None}


def test_a_batch_with_points_or_a_single_posting_keeps_the_statement(shop, monkeypatch):
    batch = history_batch(shop)
    earning = purchase_plan(
        member=MemberFacts(member_id=batch[0].member_id, member_no=batch[0].member_no),
        store_id=batch[0].store_id,
        store_code=batch[0].store_code,
        receipt_no="E1",
        channel="store",
        occurred_at=NOW,
        amount=Decimal("10.00"),
        rules=earning_rules(),
    )

    assert writers.copy_writable(batch)
    assert not writers.copy_writable(batch[:1])
    assert not writers.copy_writable([*batch, earning])


def test_a_history_import_stores_the_same_rows_by_either_writer(shop, monkeypatch):
    # The stores and categories of `shop`: SH001, BJ001, gold and tobacco.
    alice = MemberFactory(phone="+8613800000001")
    bob = MemberFactory()
    content = (
        "store,receipt_no,member_no,phone,occurred_at,amount,channel,category,sku\n"
        f"SH001,I1,{alice.member_no},,2025-04-10T14:00:00,128.50,,,\n"
        "SH001,I2,,13800000001,2025-07-01,300,online,gold,LIP01\n"
        f"BJ001,I3,{bob.member_no},,2026-01-05T09:00:00+00:00,99.99,app,tobacco,\n"
        f"SH001,I4,{bob.member_no},,2026-01-05,10,,,SKU-4\n"
        "SH001,I5,M999999999,,2026-01-05,10,,,\n"
    ).encode()
    runs = []

    def write():
        runs.append(
            import_file(
                kind="purchases", file_name="h.csv", content=content, options={"history": True}
            )
        )

    by_statement, by_copy, used = written_both_ways(monkeypatch, write)

    assert used == ["statement", "copy"]
    assert by_copy == by_statement
    assert [(run.created_count, run.bad_count) for run in runs] == [(4, 1), (4, 1)]
    assert [row["receipt_no"] for row in by_copy["purchases"]] == ["I1", "I2", "I3", "I4"]


def test_a_row_copy_refuses_is_its_error_and_the_rest_of_the_history_is_written(shop, monkeypatch):
    # Should the database refuse a value all the same, COPY raises what the statement would
    # (DataError): the batch is written in halves down to that row and nothing of it stays.
    import dataclasses

    from core.models import ImportRun
    from points import imports

    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 8)
    alice = MemberFactory()
    plan = imports.purchase_plan
    copies = []
    copy = writers.postings_copy

    def overflowing(**kwargs):
        # A value the checker let through: too large for the amount's column.
        posting = plan(**kwargs)
        if posting.receipt_no == "R3":
            posting = dataclasses.replace(posting, amount=Decimal("1e20"))
        return posting

    def counted(batch, **kwargs):
        copies.append(len(batch))
        return copy(batch, **kwargs)

    monkeypatch.setattr(imports, "purchase_plan", overflowing)
    monkeypatch.setattr(writers, "postings_copy", counted)
    content = "store,receipt_no,member_no,occurred_at,amount,category,sku\n" + "".join(
        f"SH001,R{i},{alice.member_no},2026-02-10T10:00:00,{i}0,,S{i}\n" for i in range(1, 7)
    )

    done = import_file(
        kind="purchases", file_name="h.csv", content=content.encode(), options={"history": True}
    )

    assert done.status == ImportRun.Status.DONE
    assert [(e.line, e.code) for e in done.errors.all()] == [(4, "row_refused")]
    assert (done.created_count, done.bad_count) == (5, 1)
    receipts = ["R1", "R2", "R4", "R5", "R6"]
    assert sorted(Purchase.objects.values_list("receipt_no", flat=True)) == receipts
    assert sorted(PurchaseLine.objects.values_list("sku", flat=True)) == [
        "S1",
        "S2",
        "S4",
        "S5",
        "S6",
    ]
    assert QualifyingActivity.objects.filter(member=alice).count() == 5
    # The whole batch, then its halves by COPY; single rows take the statement.
    assert copies[:2] == [6, 3]
