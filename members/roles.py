"""The back-office roles. Groups are created by data migrations; these names are the API."""

from __future__ import annotations

STORE_STAFF = "store_staff"
STORE_MANAGER = "store_manager"
MARKETER = "marketer"
ADMINISTRATOR = "administrator"
AUDITOR = "auditor"

ROLES = (STORE_STAFF, STORE_MANAGER, MARKETER, ADMINISTRATOR, AUDITOR)
