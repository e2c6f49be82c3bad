"""core.bulk: values spelled for COPY and arrays reach PostgreSQL as they were in Python."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from core.bulk import (
    CopyLayout,
    copy_escape,
    copy_value,
    copy_write,
    int_array,
    prepared_fetchall,
    rows_update,
    text_array,
)
from core.models import JobRun

AWKWARD = ["plain", 'say "hi"', "back\\slash", "tab\there", "line\nbreak", "", "会员, {x}"]


def test_copy_text_spells_each_kind_of_value():
    moment = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)

    assert [copy_value(v) for v in (None, True, False, 42, moment, {"a": "会员"})] == [
        "\\N",
        "t",
        "f",
        "42",
        "2026-03-01T09:30:00+00:00",
        '{"a": "会员"}',
    ]
    assert copy_value("a\tb\\c\nd") == "a\\tb\\\\c\\nd"


def test_copy_text_escapes_what_it_must_and_leaves_the_rest_as_it_is():
    table = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
    for value in [*AWKWARD, "cr\rhere", "\\", "\t\n\r", "收据-5"]:
        assert copy_escape(value) == value.translate(table)


def test_array_literals_quote_only_what_needs_it():
    assert int_array([3, 1, 2]) == "{3,1,2}"
    assert text_array([]) == "{}"
    assert text_array(["b", "a"]) == '{"b","a"}'
    assert text_array(['x"y']) == '{"x\\"y"}'


@pytest.mark.postgres
@pytest.mark.django_db
def test_text_arrays_reach_postgresql_unchanged():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [text_array(AWKWARD)])
        assert cursor.fetchone()[0] == AWKWARD


@pytest.mark.postgres
@pytest.mark.django_db
def test_copy_writes_rows_with_the_models_defaults_and_rows_update_sets_them_in_one_go():
    layout = CopyLayout(JobRun, ["job", "business_date", "status"], with_id=False)
    day = datetime.date(2026, 3, 1)
    copy_write(
        layout.sql(),
        [f"{copy_value(job)}\t{day}\tsucceeded{layout.tail}\n" for job in ("a\tb", "reconcile")],
    )
    runs = {run.job: run for run in JobRun.objects.all()}
    assert set(runs) == {"a\tb", "reconcile"}
    assert runs["reconcile"].rows == 0 and runs["reconcile"].details == {}

    changed = rows_update(
        JobRun,
        key="id",
        columns=(("id", "bigint"), ("rows", "bigint"), ("error", "text")),
        rows=[(runs["a\tb"].pk, 5, 'said "no"'), (runs["reconcile"].pk, 9, "")],
        assign={"status": "%s"},
        params=["failed"],
    )

    assert changed == 2
    assert sorted(JobRun.objects.values_list("job", "rows", "error", "status")) == [
        ("a\tb", 5, 'said "no"', "failed"),
        ("reconcile", 9, "", "failed"),
    ]


@pytest.mark.postgres
@pytest.mark.django_db
def test_prepared_statements_take_named_or_positional_parameters_of_any_length():
    # Longer than psycopg's 4 KB cache of converted statements, a name used twice, a
    # literal percent sign: the same answers on every run.
    padding = " ".join(f"/* {n:04d} */" for n in range(500))
    named = f"SELECT %(a)s::int + %(b)s::int, %(a)s::int * 2, '50%%' {padding}"
    for _run in range(3):
        assert prepared_fetchall(named, {"a": 3, "b": 4}) == [(7, 6, "50%")]
    assert prepared_fetchall("SELECT %s::text || %s::text", ["会员", "x"]) == [("会员x",)]
    assert prepared_fetchall("SELECT 1 WHERE false", []) == []
