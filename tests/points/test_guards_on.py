"""The ledger's guards stay on for every path: no application code switches them off, the
application's role could not if it tried, and the bulk paths write with them on."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import DatabaseError, connection, transaction

from devtools.loadgen import loadgen
from points.jobs import reconcile_job
from points.models import LedgerTransaction, Lot
from points.services import points_expire

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")
SWITCHES = re.compile(
    r"session_replication_role\s*(=|TO)|synchronous_commit\s*(=|TO)\s*'?off|DISABLE\s+TRIGGER",
    re.IGNORECASE,
)


def application_files() -> list[Path]:
    skip = {".venv", "node_modules", "tests", ".git", "static"}
    return [
        path
        for path in ROOT.rglob("*")
        if path.suffix in {".py", ".sql"}
        and path.is_file()
        and not skip & set(path.relative_to(ROOT).parts)
    ]


def test_no_application_code_switches_the_guards_off():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in application_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SWITCHES.search(line)
    ]
    assert found == []


def role() -> tuple[bool, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('is_superuser') = 'on', "
            "current_setting('session_replication_role')"
        )
        return cursor.fetchone()


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_application_role_cannot_switch_the_guards_off():
    superuser, _replication = role()
    if superuser:
        pytest.skip("connected as a superuser; CI runs this as the application's own role")
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL session_replication_role = replica")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_loadgen_and_the_nightly_expiry_write_with_the_guards_on():
    result = loadgen(members=40, purchases=600, seed=7, workers=2, rebuild_indexes=True)
    assert result.purchases == 600
    assert role()[1] == "origin"
    # Every lot of the first months is past its expiry: the set-based expiry posts them.
    expired = points_expire(at=datetime.datetime.now(tz=SH))
    assert expired > 0
    assert role()[1] == "origin"
    assert LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.EXPIRE).exists()
    assert not Lot.objects.filter(expires_at__lte=datetime.datetime.now(tz=SH), remaining__gt=0)
    _checked, details = reconcile_job(datetime.date.today())
    assert "failed" not in details, details.get("failed")
