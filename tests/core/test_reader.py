"""The threaded reader: checks rows in its thread and deals batches out to the writers."""

from __future__ import annotations

import threading

import pytest

from core.imports.runner import Reader


class Job:
    """Rows are (line, member); a member "bad" is a row with a problem of its own."""

    def check(self, line, fields):
        return (line, fields[0])

    def deal(self, row):
        return row[1] == "bad", (row[1] or None)


def records(members):
    return iter([(line, [member]) for line, member in enumerate(members, 2)])


def read(reader, part=0):
    reader.start()
    try:
        return list(reader.batches(part))
    finally:
        reader.close()


def test_rows_come_in_batches_with_the_bad_ones_apart(monkeypatch):
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 3)
    reader = Reader(records=records(["a", "bad", "b", "c", "d"]), job=Job())

    batches = read(reader)

    assert [(b.size, b.good, b.bad) for b in batches] == [
        (3, [(2, "a"), (4, "b")], [(3, "bad")]),
        (2, [(5, "c"), (6, "d")], []),
    ]


def test_with_several_writers_a_members_rows_go_to_one_of_them(monkeypatch):
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 2)
    members = ["m1", "m2", "m1", "m3", "m2", "m1", "m4", "m3"]
    reader = Reader(records=records(members), job=Job(), parts=2)
    parts: list[list] = [[], []]

    def writer(part):  # each part has its writer, reading at once
        parts[part].extend(row for batch in reader.batches(part) for row in batch.good)

    reader.start()
    threads = [threading.Thread(target=writer, args=(part,)) for part in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        reader.close()

    assert sorted(row for part in parts for row in part) == sorted(records_list(members))
    for member in set(members):
        holders = [index for index, part in enumerate(parts) if any(m == member for _l, m in part)]
        assert len(holders) == 1, member


def records_list(members):
    return [(line, member) for line, member in enumerate(members, 2)]


def test_a_rows_failure_reaches_the_writer():
    class Broken(Job):
        def check(self, line, fields):
            raise ValueError("cannot check")

    reader = Reader(records=records(["a"]), job=Broken())

    with pytest.raises(ValueError, match="cannot check"):
        read(reader)
