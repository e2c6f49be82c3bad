"""Tests: SQLite unless DATABASE_URL says otherwise; in-memory e-mail and SMS."""

from __future__ import annotations

import os

from . import TEST_SECRET_KEY

os.environ.setdefault("SECRET_KEY", TEST_SECRET_KEY)
os.environ.setdefault("STAFF_REQUIRE_MFA", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "members.sms.LocmemBackend"
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}  # noqa: F405
if "replica" in DATABASES:  # noqa: F405
    # Tests run with DATABASE_REPLICA_URL set read the test database through the replica
    # alias (there is no replication between test databases to feed another one).
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # noqa: F405
# Tests never run collectstatic: look files up per request instead of warning at every
# middleware start that STATIC_ROOT does not exist.
WHITENOISE_AUTOREFRESH = True

# One process: a change drops the copies at once (core/config.py), and a version read now
# and then would make the query-count tests' numbers depend on the clock.
CONFIG_VERSION_CHECK_SECONDS = None

# Sessions in the database with or without REDIS_URL, so the query-count tests count the
# same queries on every run (tests/members/test_redis_sessions.py runs the Redis sessions).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Tasks run in-process in tests; the Celery worker tests start a real worker themselves.
CELERY_TASK_ALWAYS_EAGER = True
