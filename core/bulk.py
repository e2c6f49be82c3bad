"""PostgreSQL bulk helpers: COPY text, array literals, column layouts, id ranges, bulk UPDATE.

Generic: nothing here knows a model of any app. The set-based writers of the apps (the
ledger's `points.ledger_bulk`, the CSV imports, loadgen) spell their rows with these:

- `copy_value` / `copy_escape`: a value in COPY's text format; `copy_write` sends the lines;
- `int_array` / `text_array`: a whole list as ONE array literal parameter (`%s::bigint[]`);
- `CopyLayout` / `InsertLayout`: the column list of a COPY or an `INSERT … SELECT`, with the
  columns the writer does not fill at their model defaults;
- `ids_draw`: fresh ids from a table's sequence, so rows can point at each other before
  they are written;
- `rows_update`: many rows' columns set by ONE `UPDATE … FROM unnest(arrays)`.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Model
from django.utils import timezone

COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def use_copy() -> bool:
    """Whether the bulk paths of this connection write with COPY (PostgreSQL) or the ORM."""
    return connection.vendor == "postgresql"


def copy_escape(value: str) -> str:
    """Text as one COPY field: backslash, tab and line breaks escaped."""
    # Most text holds none of them: four searches take an eighth of the time of translate.
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def copy_value(value: Any) -> str:
    """A Python value in COPY's text format: None, booleans, dates and times, numbers, JSON
    (lists and dicts), text."""
    if value is None:
        return COPY_NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime.date | int):  # datetime is a date too
        return value.isoformat() if isinstance(value, datetime.date) else str(value)
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    return str(value).translate(_COPY_ESCAPES)


def copy_write(sql: str, lines: Iterable[str]) -> None:
    """Send COPY lines (each ending in a newline) to `COPY … FROM STDIN`; none, no statement."""
    text = "".join(lines)
    if not text:
        return
    # COPY is psycopg's own API: map its errors to Django's, like every other query.
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.copy(sql) as copy:
        copy.write(text)


def int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal, sent as ONE text parameter (`%s::bigint[]`): psycopg
    adapts a list element by element in Python, a µs each, more than the lookup costs."""
    return "{" + ",".join(map(str, values)) + "}"


def text_array(values: Iterable[str]) -> str:
    """`int_array` for text (`%s::text[]`), in the order given: every element quoted, so any
    text is safe."""
    values = list(values)
    if not values:
        return "{}"
    text = '","'.join(values)
    # The common case, no quote or backslash inside: joined as it is.
    if "\\" in text or text.count('"') != 2 * (len(values) - 1):  # two in each '","'
        text = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + text + '"}'


def _default_of(field: Any, now: datetime.datetime) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    return field.get_default()


class CopyLayout:
    """COPY column list for `model`: the columns a writer fills, then every other column at
    its model default (so a field added later is written the way the ORM would write it).

    A line is the writer's own fields, tab-separated, then `tail`, then a newline."""

    def __init__(self, model: type[Model], own: Sequence[str], *, with_id: bool) -> None:
        fields = {f.attname: f for f in model._meta.concrete_fields}
        pk = model._meta.pk.attname
        own = [pk, *own] if with_id else list(own)
        rest = [name for name in fields if name not in own and name != pk]
        now = timezone.now()
        values = [_default_of(fields[name], now) for name in rest]
        quote = connection.ops.quote_name
        self.table = quote(model._meta.db_table)
        self.columns = ", ".join(quote(fields[name].column) for name in (*own, *rest))
        self.tail = "".join("\t" + copy_value(value) for value in values)

    def sql(self) -> str:
        return f"COPY {self.table} ({self.columns}) FROM STDIN"


class InsertLayout:
    """Column list for `INSERT INTO table (…) SELECT …`: the columns the statement fills, then
    every other column at its model default (so a field added later is written the way the
    ORM would write it). The defaults go as named parameters `<name>_<n>`: append `tail` to
    the statement's select list and pass `params` with the statement's own."""

    def __init__(
        self,
        model: type[Model],
        own: Sequence[str],
        *,
        name: str,
        now: datetime.datetime | None = None,
    ) -> None:
        """`now`: the value of auto_now fields (default: the time of the call)."""
        fields = {f.attname: f for f in model._meta.concrete_fields}
        rest = [field for attname, field in fields.items() if attname not in own]
        rest = [field for field in rest if not field.primary_key]
        now = now or timezone.now()
        self.params: dict[str, Any] = {}
        for index, field in enumerate(rest):
            value = _default_of(field, now)
            self.params[f"{name}_{index}"] = field.get_db_prep_save(value, connection)
        quote = connection.ops.quote_name
        self.table = quote(model._meta.db_table)
        self.columns = ", ".join(
            [quote(fields[attname].column) for attname in own] + [quote(f.column) for f in rest]
        )
        self.tail = "".join(f", %({key})s" for key in self.params)


def ids_draw(model: type[Model], count: int) -> list[int]:
    """PostgreSQL: `count` fresh ids from the model's sequence."""
    if count == 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [pk for (pk,) in cursor.fetchall()]


def rows_update(
    model: type[Model],
    *,
    key: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    assign: dict[str, str] | None = None,
    params: Sequence[Any] = (),
) -> int:
    """PostgreSQL: set `columns` of many rows of `model` with ONE statement; rows changed.

    `key`: the column that finds a row (`id`, `member_id`); `columns`: (column, SQL type)
    of the values, key first; `rows`: one tuple of values per row, in the order of
    `columns`. `assign` sets further columns by an SQL expression (`{"updated_at": "%s"}`)
    whose parameters are `params`. Django's bulk_update writes a CASE WHEN per row and
    column instead, milliseconds of Python a row at any width; here each column is one
    array literal (psycopg's list adaptation), read back with `unnest`.
    """
    if not rows:
        return 0
    names = [column for column, _type in columns]
    if key != names[0]:
        raise ValueError("the key column comes first")
    quote = connection.ops.quote_name
    arrays = ", ".join(f"%s::{kind}[]" for _column, kind in columns)
    assignments = [f"{quote(column)} = v.{quote(column)}" for column in names[1:]]
    assignments += [f"{quote(column)} = {sql}" for column, sql in (assign or {}).items()]
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS t SET {', '.join(assignments)} "  # noqa: S608
        f"FROM unnest({arrays}) AS v({', '.join(quote(name) for name in names)}) "
        f"WHERE t.{quote(key)} = v.{quote(key)}"
    )
    values = [[row[index] for row in rows] for index in range(len(names))]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *values])
        return cursor.rowcount


def prepared_fetchall(sql: str, params: dict[str, Any] | Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a statement of the hot path (a live purchase's) on PostgreSQL as a server-side
    prepared statement: parsed and planned once per connection, not for every purchase
    (psycopg's `prepare=True` on a server-binding cursor; the connection's
    `prepare_threshold` must not be None, see settings); its rows. Logged as Django logs
    its own queries (`connection.queries`, CaptureQueriesContext)."""
    connection.ensure_connection()
    began = time.monotonic()
    cursor = _prepared_cursor(connection.connection)
    raw_sql, names = _numbered(sql)
    values = [params[name] for name in names] if isinstance(names, tuple) else params
    # Django's error classes (IntegrityError …), as its own cursors raise them.
    with connection.wrap_database_errors:
        cursor.execute(raw_sql, values, prepare=True)
        result = cursor.pgresult
        # The rows without building `cursor.description` (column objects) first.
        rows = cursor.fetchall() if result is not None and result.nfields else []
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - began:.3f}"})
    return rows


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")


@functools.lru_cache(maxsize=64)
def _numbered(sql: str) -> tuple[str, tuple[str, ...] | int]:
    """The statement with PostgreSQL's own placeholders ($1, $2 …) for a raw cursor, and
    the parameter names in their order (or the number of positional ones). psycopg
    converts `%(name)s` itself, but caches that only for statements up to 4 KB: the
    posting statement was split with a regular expression on every purchase."""
    numbers: dict[str, int] = {}
    positional = 0

    def number(match: re.Match[str]) -> str:
        nonlocal positional
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is None:
            positional += 1
            return f"${positional}"
        return f"${numbers.setdefault(match.group(1), len(numbers) + 1)}"

    raw = _PLACEHOLDER.sub(number, sql)
    if numbers and positional:
        raise ValueError("a statement takes named or positional parameters, not both")
    return raw, tuple(numbers) if numbers else positional


# One server-binding cursor per database connection, kept for its next statement: making a
# cursor and its adapters for every statement cost more than running a prepared one.
_cursors: dict[int, Any] = {}
_cursors_lock = threading.Lock()


def _prepared_cursor(raw: Any) -> Any:
    from psycopg import RawCursor  # PostgreSQL only: not imported on SQLite
    from psycopg.types.string import StrDumper

    cursor = _cursors.get(id(raw))
    if cursor is None or cursor.closed or cursor.connection is not raw:
        cursor = RawCursor(raw)
        # Text as text (not 'unknown'): a parameter used twice gets one type.
        cursor.adapters.register_dumper(str, StrDumper)
        with _cursors_lock:  # the threads of a gunicorn worker share the dict
            for stale in [key for key, kept in _cursors.items() if kept.connection.closed]:
                del _cursors[stale]
            _cursors[id(raw)] = cursor
    return cursor
