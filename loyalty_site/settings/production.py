"""Production: base.py and the environment, refusing what must never serve real members.

gunicorn, the ASGI server and Celery load this module unless DJANGO_SETTINGS_MODULE says
otherwise (loyalty_site/wsgi.py, asgi.py, celery.py). It will not start with debug pages on
(they show settings, SQL and stack frames to any visitor) or with a secret key someone else
may know: the key signs sessions, password-reset links and CSRF tokens.
"""

from __future__ import annotations

import environ
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from . import DEV_SECRET_KEY, TEST_SECRET_KEY

MAKE_A_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"


def production_environment_check(env: environ.Env) -> None:
    """Raise ImproperlyConfigured, naming the variable, for DEBUG on or a missing or weak key."""
    if env.bool("DEBUG", default=False):
        raise ImproperlyConfigured(
            "DEBUG is on: production settings refuse to start with debug pages, which show "
            "settings and stack traces to every visitor. Unset DEBUG or set DEBUG=false "
            "(a local server uses loyalty_site.settings.dev: manage.py runserver)."
        )
    key = env.str("SECRET_KEY", default="")
    if not key:
        raise ImproperlyConfigured(
            f"SECRET_KEY is not set: production settings need a secret key. Make one with "
            f"{MAKE_A_KEY} and keep it secret (it signs sessions and password-reset links)."
        )
    if key in (DEV_SECRET_KEY, TEST_SECRET_KEY):
        raise ImproperlyConfigured(
            f"SECRET_KEY is the development/test key written in loyalty_site/settings/, known "
            f"to anyone who has read the code. Make a new one with {MAKE_A_KEY}."
        )
    # Django's own threshold (check --deploy, security.W009), so the two never disagree.
    if (
        len(key) < SECRET_KEY_MIN_LENGTH
        or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or key.startswith(SECRET_KEY_INSECURE_PREFIX)
    ):
        raise ImproperlyConfigured(
            f"SECRET_KEY is too weak ({len(key)} characters, {len(set(key))} different): it "
            f"needs at least {SECRET_KEY_MIN_LENGTH} characters, at least "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones, and no "
            f"'{SECRET_KEY_INSECURE_PREFIX}' prefix. Make one with {MAKE_A_KEY}."
        )


# Checked before base.py reads the environment, so a missing key gets the message above
# rather than django-environ's.
production_environment_check(environ.Env())

from .base import *  # noqa: E402, F403
