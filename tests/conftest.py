"""Shared fixtures. Tests run on SQLite by default, on PostgreSQL/Redis when configured."""

from __future__ import annotations

import importlib
import os
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection

from members import sms
from members.roles import ROLES

from .factories import StoreFactory, UserFactory

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API in live tests


def pytest_collection_modifyitems(config, items) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    on_postgres = engine == "django.db.backends.postgresql"
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://…")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://…")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def sms_outbox():
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


@pytest.fixture(autouse=True)
def _clear_cache():
    # allauth's rate limits count in the cache; every test starts with none used.
    from django.core.cache import cache

    from core.config import config_cache_clear

    cache.clear()
    # The configuration a process keeps (core/config.py) is of the last test's rows.
    config_cache_clear()


@pytest.fixture
def store(db):
    return StoreFactory(code="SH001", name="上海南京路店", city="上海")


# The roles (groups with their permissions) as the migrations made them. Transactional tests
# (browser, concurrency) empty every table when they finish, data migrations' rows included,
# so the roles are put back from this copy when a later test asks for one.
_roles: dict[str, list[tuple[str, str]]] = {}


@pytest.fixture(scope="session", autouse=True)
def _remember_roles(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        # A run with no database test (tests/test_settings.py alone) has no tables to read.
        if Group._meta.db_table not in connection.introspection.table_names():
            return
        for group in Group.objects.prefetch_related("permissions__content_type"):
            _roles[group.name] = [
                (p.content_type.app_label, p.codename) for p in group.permissions.all()
            ]


def tier_levels_restore() -> None:
    """Put the default tier levels back if an earlier transactional test's flush took them.

    They are rows of a data migration, which a flush deletes like any others (the roles are
    put back by `make_role_user` the same way); purchases and the tier job need them.
    """
    from tiers.models import TierLevel

    if TierLevel.objects.exists():
        return
    migration = importlib.import_module("tiers.migrations.0002_levels_roles_guards")
    for rank, code, zh, en, qualify, retain, mult, discount, ben_zh, ben_en in migration.LEVELS:
        TierLevel.objects.create(
            rank=rank,
            code=code,
            name_zh=zh,
            name_en=en,
            qualify_spend=Decimal(qualify),
            qualify_points=qualify,
            retain_spend=Decimal(retain),
            retain_points=retain,
            earn_multiplier=Decimal(mult),
            discount_rate=Decimal(discount),
            birthday_coupon=rank >= 2,
            benefits_zh=ben_zh,
            benefits_en=ben_en,
        )


@pytest.fixture(autouse=True)
def _tier_levels_present(request):
    """Every test that touches the database starts with the seeded tier levels."""
    if request.node.get_closest_marker("django_db") is not None:
        tier_levels_restore()  # pytest-django's marker fixture has opened the database
    elif {"db", "transactional_db"} & set(request.fixturenames):
        request.getfixturevalue(
            "transactional_db" if "transactional_db" in request.fixturenames else "db"
        )
        tier_levels_restore()


def make_role_user(role: str, *, stores=(), **kwargs):
    """A user in `role`, acting for `stores` (store staff and managers act for those only)."""
    from django.contrib.auth.models import Permission

    group = Group.objects.filter(name=role).first()
    if group is None:
        group = Group.objects.create(name=role)
        for app_label, codename in _roles[role]:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
    user = UserFactory(**kwargs)
    user.groups.add(group)
    user.stores.set(stores)
    return user


@pytest.fixture
def role_user(db):
    """role_user("store_staff") → a user in that role."""
    return make_role_user


@pytest.fixture
def staff_user(db, store):
    """A store staff member of store SH001 (the `store` fixture)."""
    return make_role_user("store_staff", email="staff@example.com", name="店员小王", stores=[store])


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture(params=ROLES)
def any_role(request):
    return request.param
