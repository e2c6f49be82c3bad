"""With Redis, sessions are read from it (written through to the database): a log-in holds
across requests, a log-out ends it everywhere."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session

from tests.factories import UserFactory

pytestmark = pytest.mark.redis


def test_a_session_is_read_from_redis_and_ended_by_log_out(client, settings, db):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    user = UserFactory()
    client.force_login(user)
    key = client.session.session_key
    assert Session.objects.filter(session_key=key).exists()  # written through
    response = client.get("/")
    assert response.wsgi_request.user == user
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    from django.core.cache import cache

    assert cache.get(f"django.contrib.sessions.cached_db{key}") is None
    assert not client.get("/").wsgi_request.user.is_authenticated
