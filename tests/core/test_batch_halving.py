"""The importer's writer: a batch the database refuses is written in halves down to the row,
which is reported; a batch that met a concurrent write is tried again whole."""

from __future__ import annotations

import pytest

from core.imports import import_error_list, import_error_message, import_file

pytestmark = pytest.mark.django_db


def run(text: str):
    return import_file(kind="notes", file_name="notes.csv", content=text.encode())


def test_a_refused_row_is_reported_and_the_rest_of_its_batch_is_written(notes, monkeypatch):
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 8)
    rows = ["ok"] * 8
    rows[5] = "refused"
    done = run("ref,text\n" + "".join(f"N{i},{text}\n" for i, text in enumerate(rows, 1)))

    assert done.status == "done"
    assert sorted(notes.written) == sorted(f"N{i}" for i in range(1, 9) if i != 6)
    assert [
        (e.line, e.ref, e.code, import_error_message(e, kind="notes"))
        for e in import_error_list(run=done)
    ] == [(7, "N6", "row_refused", "Refused: value too long for type character varying(5)")]
    assert (done.processed_rows, done.created_count, done.bad_count) == (8, 7, 1)
    assert done.points_posted == 7


def test_bad_rows_of_a_split_batch_are_reported_once(notes, monkeypatch):
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 4)
    done = run("ref,text\nN1,bad\nN2,refused\nN3,ok\nN4,ok\n")

    assert [(e.line, e.code) for e in import_error_list(run=done)] == [
        (2, "bad_text"),
        (3, "row_refused"),
    ]
    assert (done.processed_rows, done.created_count, done.bad_count) == (4, 2, 2)


def test_a_batch_that_met_a_concurrent_write_is_written_again_whole(notes):
    done = run("ref,text\nN1,ok\nN2,raced\n")

    assert notes.attempts == [0, 1]
    assert sorted(notes.written) == ["N1", "N2"]
    assert (done.created_count, done.bad_count) == (2, 0)


def test_progress_is_told_after_every_batch_in_file_order(notes, monkeypatch):
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 2)
    seen = []

    import_file(
        kind="notes",
        file_name="n.csv",
        content=("ref,text\n" + "".join(f"N{i},ok\n" for i in range(5))).encode(),
        progress=seen.append,
    )

    assert [(step.processed, step.total, step.created) for step in seen] == [
        (2, 5, 2),
        (4, 5, 4),
        (5, 5, 5),
    ]
