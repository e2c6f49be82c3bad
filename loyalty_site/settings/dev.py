"""Local demo: debug on, console e-mail and SMS, MFA for staff off."""

from __future__ import annotations

import os

from . import DEV_SECRET_KEY

os.environ.setdefault("SECRET_KEY", DEV_SECRET_KEY)
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("STAFF_REQUIRE_MFA", "false")

from .base import *  # noqa: F403

STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
