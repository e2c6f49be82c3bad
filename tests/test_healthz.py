"""/healthz: what a load balancer or `docker compose` sees."""

from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db

# Nothing listens on port 1: connecting fails at once, a real refused connection.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@override_settings(REDIS_URL="")
def test_healthy_without_redis_reports_redis_not_configured(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "redis": "not configured"}


@override_settings(REDIS_URL=UNREACHABLE_REDIS)
def test_unreachable_redis_makes_it_unhealthy(client):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"] == "ok"
    assert body["redis"].startswith("error: ")
    # Public endpoint: the failure is named, the connection settings are not.
    assert "127.0.0.1" not in body["redis"]


@pytest.mark.redis
def test_configured_redis_that_answers_is_ok(client, settings):
    assert settings.REDIS_URL

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_is_never_cached(client):
    response = client.get("/healthz")

    assert "no-cache" in response["Cache-Control"]


def test_only_reads(client):
    assert client.post("/healthz").status_code == 405


@override_settings(SECURE_SSL_REDIRECT=True)
def test_is_not_redirected_to_https_while_pages_are(client):
    page = client.get("/accounts/login/")
    assert page.status_code == 301
    assert page["Location"].startswith("https://")

    response = client.get("/healthz")
    assert response.status_code in (200, 503)
    assert "status" in response.json()
