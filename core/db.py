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

import datetime
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

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


class CompiledRead:
    """A read of every till request whose ORM query is compiled once per process and then
    run with other values: building and compiling the query cost more than running it.

    `build(**samples)` returns the queryset; each sample is a value that appears as a query
    parameter and nowhere else (a string or a datetime nobody stores), so its place among
    the compiled parameters can be found. `fetch(**values)` runs the compiled SQL with the
    values in those places and returns model instances as the queryset would (its
    select_related relations and annotations included), through Django's own row
    converters and related-object populators. The queryset stays the reference: a test
    compares the two for the reads that use this.
    """

    def __init__(self, build: Callable[..., QuerySet], **samples: Any) -> None:
        self.build = build
        self.samples = samples
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def fetch(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[Model]:
        compiled = self._compiled.get(using)
        if compiled is None:
            compiled = self._compile(using)
        params = list(compiled.params)
        for name, (position, adapt) in compiled.places.items():
            params[position] = adapt(values[name])
        connection = connections[using]
        if connection.vendor == "postgresql" and using == DEFAULT_DB_ALIAS:
            from .bulk import prepared_fetchall  # planned once per connection, too

            rows = prepared_fetchall(compiled.sql, params)
        else:
            with connection.cursor() as cursor:
                cursor.execute(compiled.sql, params)
                rows = cursor.fetchall()
        return compiled.instances(rows, connection)

    def _compile(self, using: str) -> _Compiled:
        connection = connections[using]
        queryset = self.build(**self.samples)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        places: dict[str, tuple[int, Callable[[Any], Any]]] = {}
        for name, sample in self.samples.items():
            adapt = _adapter(sample, connection)
            found = [i for i, p in enumerate(params) if p == sample or p == adapt(sample)]
            if len(found) != 1:
                raise ValueError(f"the sample for {name!r} must be one parameter of the query")
            places[name] = (found[0], adapt)
        compiled = _Compiled(sql=sql, params=tuple(params), places=places, compiler=compiler)
        with self._lock:
            self._compiled[using] = compiled
        return compiled


def _adapter(sample: Any, connection: Any) -> Callable[[Any], Any]:
    if isinstance(sample, datetime.datetime):
        return connection.ops.adapt_datetimefield_value
    return lambda value: value


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    places: dict[str, tuple[int, Callable[[Any], Any]]]
    compiler: Any  # set up once (select, klass_info …), then only read

    @functools.cached_property
    def shape(self) -> tuple[Any, ...]:
        # What django.db.models.query.ModelIterable works out for every query, once: the
        # model's columns, the related objects' populators and the row converters.
        compiler = self.compiler
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, compiler.using)
        converters = compiler.get_converters([s[0] for s in select[0 : compiler.col_count]])
        return klass_info["model"], start, end, init_list, populators, converters

    def instances(self, rows: list[tuple[Any, ...]], connection: Any) -> list[Model]:
        model, start, end, init_list, populators, converters = self.shape
        found = []
        for raw in rows:
            row = list(raw)
            for position, (functions, expression) in converters.items():
                value = row[position]
                for function in functions:
                    value = function(value, expression, connection)
                row[position] = value
            obj = model.from_db(connection.alias, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in self.compiler.annotation_col_map.items():
                setattr(obj, name, row[position])
            found.append(obj)
        return found
