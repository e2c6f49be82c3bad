"""Shared fixtures. Tests run on SQLite by default, on PostgreSQL/Redis when configured."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

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

    cache.clear()


@pytest.fixture
def store(db):
    return StoreFactory(code="SH001", name="上海南京路店", city="上海")


def make_role_user(role: str, **kwargs):
    user = UserFactory(**kwargs)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def role_user(db):
    """role_user("store_staff") → a user in that role."""
    return make_role_user


@pytest.fixture
def staff_user(db):
    return make_role_user("store_staff", email="staff@example.com", name="店员小王")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture(params=ROLES)
def any_role(request):
    return request.param
