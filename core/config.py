"""Configuration read once per process: what every request needs and an administrator
changes a few times a year (the tier ladder, the earning policy, category rates).

Reading it from the database on every till request cost more than the ledger's own work,
so each process keeps what a `config_cached` function returned until the configuration
changes:

- A save or delete of a registered model (`config_models_register`, from the apps'
  `ready()`) drops this process's copies at once, and again when it commits, and adds one
  to the version row (`ConfigVersion`) in the same transaction; so does every `migrate`
  (data migrations send no signal the registrations see).
- Every process reads that version at most once per CONFIG_VERSION_CHECK_SECONDS and drops
  its copies when it moved: another process (a worker, the admin's web server) sees the
  change within that many seconds. None: never read (a single process: tests).
- While the transaction that changed the configuration is open, this thread reads afresh
  and keeps nothing: had it kept rows that are then rolled back, it would serve them until
  the next change.

- A value read while another thread dropped the copies is served once and not kept: it may
  be of the rows before the change.

A bulk `QuerySet.update()` sends no signal: code that changes configuration that way calls
`config_changed()` itself.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

T = TypeVar("T")

_values: dict[str, Any] = {}
_lock = threading.Lock()
# Goes up with every clear: a value read before a clear (the old rows) is not kept after it.
_generation = [0]


class _State(threading.local):
    # The atomic block in which this thread changed configuration, if it is still open.
    changed_in_transaction = False


_state = _State()
_version = {"seen": None, "checked_at": None}


def config_cache_clear() -> None:
    """Drop this process's copies (a change, a test's fresh start)."""
    with _lock:
        _values.clear()
        _generation[0] += 1
        _version["checked_at"] = None
    _state.changed_in_transaction = False


def _read_version() -> int | None:
    from .models import ConfigVersion

    table = connections[DEFAULT_DB_ALIAS].ops.quote_name(ConfigVersion._meta.db_table)
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(f"SELECT version FROM {table} WHERE id = 1")  # noqa: S608 - our table
        row = cursor.fetchone()
    return row[0] if row else None


def _check_version() -> None:
    interval = settings.CONFIG_VERSION_CHECK_SECONDS
    if interval is None:
        return
    now = time.monotonic()
    checked_at = _version["checked_at"]
    if checked_at is not None and now - checked_at < interval:
        return
    version = _read_version()
    with _lock:
        # No row (flushed): nothing to compare with, so nothing is kept past this check.
        if version is None or version != _version["seen"]:
            _values.clear()
            _generation[0] += 1
            _version["seen"] = version
        _version["checked_at"] = now


def _fresh_reads_only() -> bool:
    if not _state.changed_in_transaction:
        return False
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return True
    # The block that changed it has ended, committed or rolled back: copies from now on
    # are of committed rows.
    config_cache_clear()
    return False


def config_cached(function: Callable[[], T]) -> Callable[[], T]:
    """Keep what `function` (no arguments) returns per process until the configuration
    changes. What it returns is shared by every request of the process: read only."""
    key = f"{function.__module__}.{function.__qualname__}"

    @functools.wraps(function)
    def cached() -> T:
        if _fresh_reads_only():
            return function()
        _check_version()
        try:
            return _values[key]
        except KeyError:
            generation = _generation[0]
            value = function()
            with _lock:
                # Another thread cleared the copies while this one read: what it read may be
                # the rows before the change, so it serves them once and keeps nothing.
                if _generation[0] == generation:
                    _values[key] = value
            return value

    return cached


def config_changed(**_signal: Any) -> None:
    """The configuration changed: this process reads afresh, the others within
    CONFIG_VERSION_CHECK_SECONDS (a signal receiver, and callable after a bulk update)."""
    from .models import ConfigVersion

    config_cache_clear()
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.in_atomic_block:
        _state.changed_in_transaction = True
        # The process's other threads may fill their copies from the rows committed before
        # this change while it is still open: drop them again when it commits.
        transaction.on_commit(config_cache_clear)
    table = connection.ops.quote_name(ConfigVersion._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET version = version + 1 WHERE id = 1")  # noqa: S608
        if cursor.rowcount == 0:  # the row of the migration was flushed (transactional tests)
            ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def config_changed_after_migrate(**_signal: Any) -> None:
    """A data migration writes through historical models, which send no signal the
    registrations see: every `migrate` counts as a change (the version row exists by then)."""
    from .models import ConfigVersion

    if ConfigVersion._meta.db_table in connections[DEFAULT_DB_ALIAS].introspection.table_names():
        config_changed()


def config_models_register(*models: type[Model]) -> None:
    """Every save or delete of these models is a configuration change."""
    for model in models:
        uid = f"config:{model._meta.label}"
        post_save.connect(config_changed, sender=model, dispatch_uid=uid + ":save")
        post_delete.connect(config_changed, sender=model, dispatch_uid=uid + ":delete")
        for field in model._meta.local_many_to_many:
            m2m_changed.connect(
                config_changed, sender=field.remote_field.through, dispatch_uid=uid + field.name
            )
