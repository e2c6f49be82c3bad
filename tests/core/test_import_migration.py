"""The member and points imports of before are copied into the one framework's tables."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.models import ImportRowError, ImportRun
from members.models import AuditEntry


@pytest.mark.django_db(transaction=True)
def test_old_imports_keep_their_reports_and_the_old_addresses_find_them(admin_client):
    executor = MigrationExecutor(connection)
    executor.migrate([("members", "0013_apitoken_full_phone"), ("points", "0023_purchase_history")])
    state = executor.loader.project_state(
        [("members", "0013_apitoken_full_phone"), ("points", "0023_purchase_history")]
    )
    MemberImport = state.apps.get_model("members", "MemberImport")
    MemberImportError = state.apps.get_model("members", "MemberImportError")
    PointsImport = state.apps.get_model("points", "PointsImport")
    PointsImportError = state.apps.get_model("points", "PointsImportError")
    OldAudit = state.apps.get_model("members", "AuditEntry")
    member_run = MemberImport.objects.create(
        pk=1, file_name="members.csv", sha256="a" * 64, status="done", created_count=5
    )
    MemberImportError.objects.create(
        member_import=member_run, line=3, source_id="A3", column="phone", code="phone_invalid"
    )
    clash = PointsImport.objects.create(
        pk=1, kind="purchases", file_name="till.csv", sha256="b" * 64, points_posted=120
    )
    PointsImport.objects.create(
        pk=2, kind="balances", file_name="old.csv", sha256="c" * 64, status="done"
    )
    PointsImportError.objects.create(
        points_import=clash, line=2, ref="R9", column="member_no", code="member_unknown"
    )
    OldAudit.objects.create(
        action="points.import_purchases", target_type="pointsimport", target_id="1"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    members_run = ImportRun.objects.get(pk=1)
    assert (members_run.kind, members_run.file_name, members_run.created_count) == (
        "members",
        "members.csv",
        5,
    )
    assert list(ImportRowError.objects.filter(run=members_run).values_list("line", "ref")) == [
        (3, "A3")
    ]
    till = ImportRun.objects.get(kind="purchases")
    assert (till.legacy_id, till.points_posted) == (1, 120)
    assert till.pk not in (1, 2)  # 1 was the member import's, 2 the balances' own
    assert ImportRun.objects.get(kind="balances").pk == 2
    assert list(till.errors.values_list("line", "ref", "code")) == [(2, "R9", "member_unknown")]
    entry = AuditEntry.objects.get(action="points.import_purchases")
    assert (entry.target_type, entry.target_id) == ("importrun", str(till.pk))
    # New runs take ids after the copied ones.
    assert ImportRun.objects.create(kind="members", file_name="new.csv", sha256="d" * 64).pk > 2

    assert admin_client.get(f"/staff/purchases/import/{clash.pk}/").url == (
        f"/staff/imports/{till.pk}/"
    )
    assert admin_client.get("/staff/members/import/1/").url == "/staff/imports/1/"
