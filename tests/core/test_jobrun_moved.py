"""JobRun moved from members to core: the runs recorded before stay, and so do the rights."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.models import JobRun
from tests.factories import UserFactory


@pytest.mark.django_db(transaction=True)
def test_runs_and_the_roles_rights_recorded_under_members_are_there_after_the_move():
    executor = MigrationExecutor(connection)
    executor.migrate([("core", None)])  # back to members' JobRun
    apps = executor.loader.project_state([("members", "0013_apitoken_full_phone")]).apps
    OldJobRun = apps.get_model("members", "JobRun")
    OldJobRun.objects.create(
        job="reconcile", business_date=datetime.date(2026, 3, 1), status="succeeded", rows=7
    )
    manager = Group.objects.create(name="jobs watchers")
    manager.permissions.add(
        Permission.objects.get(content_type__app_label="members", codename="view_jobs")
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    run = JobRun.objects.get()
    assert (run.job, run.business_date, run.rows) == ("reconcile", datetime.date(2026, 3, 1), 7)
    user = UserFactory()
    user.groups.add(manager)
    assert user.has_perm("core.view_jobs")
    assert not Permission.objects.filter(content_type__app_label="members", codename="view_jobs")
