"""One set of import pages for every kind: each kind's permission, the old addresses."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from core.models import ImportRun
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, role_user, store):
    client.force_login(role_user("administrator", email="admin@example.com"))
    return client


def test_each_kind_has_its_upload_page(admin_client):
    for kind, column in (
        ("members", "source_id"),
        ("purchases", "receipt_no"),
        ("balances", "points"),
    ):
        page = admin_client.get(f"/staff/imports/{kind}/")
        assert page.status_code == 200
        assert f"<code>{column}</code>" in page.content.decode()
    assert admin_client.get("/staff/imports/no-such-kind/").status_code == 404


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/staff/members/import/", "/staff/imports/members/"),
        ("/staff/purchases/import/", "/staff/imports/purchases/"),
        ("/staff/balances/import/", "/staff/imports/balances/"),
    ],
)
def test_the_old_upload_addresses_redirect(admin_client, old, new):
    response = admin_client.get(old)

    assert (response.status_code, response.url) == (301, new)


def test_old_report_addresses_find_the_run_by_its_id_of_before(admin_client):
    member_run = ImportRun.objects.create(kind="members", file_name="m.csv", sha256="0" * 64)
    moved = ImportRun.objects.create(
        kind="purchases", file_name="p.csv", sha256="1" * 64, legacy_id=member_run.pk
    )

    assert admin_client.get(f"/staff/members/import/{member_run.pk}/").url == (
        f"/staff/imports/{member_run.pk}/"
    )
    assert admin_client.get(f"/staff/purchases/import/{member_run.pk}/").url == (
        f"/staff/imports/{moved.pk}/"
    )
    assert admin_client.get(f"/staff/purchases/import/{member_run.pk}/errors.csv").url == (
        f"/staff/imports/{moved.pk}/errors.csv"
    )
    assert admin_client.get("/staff/balances/import/999/").status_code == 404


def test_each_kind_asks_for_its_own_permission(client):
    user = UserFactory(email="importer@example.com")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["use_backoffice", "import_members"])
    )
    client.force_login(user)
    points_run = ImportRun.objects.create(kind="purchases", file_name="p.csv", sha256="0" * 64)
    member_run = ImportRun.objects.create(kind="members", file_name="m.csv", sha256="1" * 64)

    assert client.get("/staff/imports/members/").status_code == 200
    assert client.get(f"/staff/imports/{member_run.pk}/").status_code == 200
    assert client.get("/staff/imports/purchases/").status_code == 403
    assert client.get(f"/staff/imports/{points_run.pk}/").status_code == 403
    assert client.get(f"/staff/imports/{points_run.pk}/errors.csv").status_code == 403


def test_every_import_page_leads_to_the_other_kinds_the_person_may_import(admin_client, client):
    home = admin_client.get("/staff/").content.decode()
    for kind in ("members", "purchases", "balances"):
        assert f'href="/staff/imports/{kind}/"' in home
    page = admin_client.get("/staff/imports/members/").content.decode()
    assert 'href="/staff/imports/purchases/"' in page
    assert 'href="/staff/imports/balances/"' in page

    # Someone who may import only members is not shown the points imports.
    user = UserFactory(email="members-only@example.com")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["use_backoffice", "import_members"])
    )
    client.force_login(user)
    page = client.get("/staff/imports/members/").content.decode()
    assert 'href="/staff/imports/purchases/"' not in page
    assert 'href="/staff/imports/balances/"' not in page
