"""`manage.py loadgen` and `manage.py bench ledger`, at small sizes."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from members.models import Member
from points.jobs import reconcile_job
from points.models import Account, LedgerTransaction, Lot, Purchase


def loadgen(*args: str) -> str:
    out = StringIO()
    call_command("loadgen", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


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
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert set(result) == {"purchases_per_s", "p50_ms", "p95_ms", "writers", "members"}
    assert result["purchases_per_s"] > 0
    assert result["members"] == 20
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
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["writers"] == 2
    assert result["purchases_per_s"] > 0, err.getvalue()
    _checked, details = reconcile_job(timezone.localdate())
    assert "failed" not in details
