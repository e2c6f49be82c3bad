"""Which database a read goes to: the primary, or a read-only replica that may lag.

With DATABASE_REPLICA_URL set there is a `replica` alias (loyalty_site/settings/base.py).
The analytics figures (settings.DATABASE_REPLICA_MODELS) are written once a night and read
by the dashboards, their CSV exports and churn training: a few seconds of replication lag
costs nothing there, and those long reads then leave the primary to the tills. Everything
else — the ledger, members, anything read to decide a write — must see the latest commit,
so it reads the primary; every write goes to the primary, and only the primary is migrated.

Reads inside a transaction on the primary stay there: the transaction may have written the
rows itself (the nightly analytics job, churn scoring), and the replica sees them only
after the commit. A row read from the replica is saved and deleted on the primary (writes
never follow the row's `_state.db`).

The ORM is routed by `ReplicaRouter` (settings.DATABASE_ROUTERS). Raw SQL that reads the
figures asks `analytics_read_alias()` for its connection:
`connections[analytics_read_alias()].cursor()`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

REPLICA = "replica"


def analytics_read_alias() -> str:
    """The alias reads of analytics figures use: "replica" when one is configured and the
    primary is not inside a transaction, else "default"."""
    if REPLICA in connections and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return REPLICA
    return DEFAULT_DB_ALIAS


class ReplicaRouter:
    """Analytics figures read from the replica (when there is one); all else the primary."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        if model._meta.label in settings.DATABASE_REPLICA_MODELS:
            return analytics_read_alias()
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # Both aliases hold the same rows: figures read from the replica may point at a
        # member read from the primary.
        if {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA}:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # The replica copies the primary's schema; it cannot be (and is not) migrated.
        return db == DEFAULT_DB_ALIAS
