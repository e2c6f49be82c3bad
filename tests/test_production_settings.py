"""The production settings' refusals, one environment at a time.

tests/test_entry_points.py starts the real entry points; here the check itself is called with
each kind of key, in this process (fast), after the module was imported once with a good one.
"""

from __future__ import annotations

import importlib
import secrets

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from loyalty_site.settings import DEV_SECRET_KEY, TEST_SECRET_KEY


@pytest.fixture
def production_check(monkeypatch):
    """production_check(**environment): the production settings' check of that environment."""
    monkeypatch.delenv("DEBUG", raising=False)
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(50))
    production = importlib.import_module("loyalty_site.settings.production")

    def check(**environment: str) -> None:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        production.production_environment_check(environ.Env())

    return check


def test_a_random_key_without_debug_passes(production_check):
    production_check(SECRET_KEY=secrets.token_urlsafe(50), DEBUG="false")


@pytest.mark.parametrize("debug", ["true", "True", "1", "on", "yes"])
def test_debug_on_is_refused(production_check, debug):
    with pytest.raises(ImproperlyConfigured, match=r"^DEBUG is on: .* DEBUG=false"):
        production_check(DEBUG=debug)


def test_an_empty_key_is_refused_with_how_to_make_one(production_check):
    with pytest.raises(ImproperlyConfigured, match=r"^SECRET_KEY is not set") as refused:
        production_check(SECRET_KEY="")

    assert "secrets.token_urlsafe(50)" in str(refused.value)


@pytest.mark.parametrize("key", [DEV_SECRET_KEY, TEST_SECRET_KEY])
def test_the_keys_written_in_the_repository_are_refused(production_check, key):
    # Both are long and varied enough for Django's own check: only this rule stops them.
    assert len(key) >= 50

    with pytest.raises(ImproperlyConfigured, match=r"^SECRET_KEY is the development/test key"):
        production_check(SECRET_KEY=key)


@pytest.mark.parametrize(
    "key",
    [
        secrets.token_urlsafe(50)[:49],
        "x" * 64,
        "django-insecure-" + secrets.token_urlsafe(50),
    ],
    ids=["49 characters", "one character repeated", "django-insecure prefix"],
)
def test_a_key_django_calls_weak_is_refused(production_check, key):
    with pytest.raises(ImproperlyConfigured, match=r"^SECRET_KEY is too weak"):
        production_check(SECRET_KEY=key)
