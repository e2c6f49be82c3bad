"""On PostgreSQL a file of several batches is written through two connections at once.

The other import tests run inside a test transaction, where the import keeps to one
connection; these commit for real so the two writers are the ones doing the work.
"""

from __future__ import annotations

import pytest

from core.imports import BATCH_SIZE, import_error_list, import_file
from core.models import ImportRun
from devtools.benchmarks.members import BENCH_STORES, synthetic_members_csv
from members.models import AuditEntry, ConsentEvent, Member
from members.services import store_ensure

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROWS = 3 * BATCH_SIZE + 123


def problems(member_import: ImportRun) -> list[tuple[int, str, str]]:
    return [(e.line, e.column, e.code) for e in import_error_list(run=member_import)]


def test_a_file_of_several_batches_is_imported_once_with_the_right_counts():
    for code, name, city in BENCH_STORES:
        store_ensure(code=code, name=name, city=city)
    content = synthetic_members_csv(rows=ROWS, bad_ratio=0.01, seed=7)
    seen = []

    first = import_file(
        kind="members",
        file_name="big.csv",
        content=content,
        actor_label="test",
        progress=seen.append,
    )

    assert first.status == ImportRun.Status.DONE
    assert first.processed_rows == ROWS
    assert first.bad_count > 0
    assert first.created_count + first.bad_count == ROWS
    assert Member.objects.filter(enrolment_channel=Member.Channel.IMPORT).count() == (
        first.created_count
    )
    # Progress comes in file order, one step a batch, whichever writer finished first.
    assert [step.processed for step in seen] == [BATCH_SIZE, 2 * BATCH_SIZE, 3 * BATCH_SIZE, ROWS]
    stored = ImportRun.objects.get(pk=first.pk)
    assert (stored.processed_rows, stored.created_count, stored.bad_count) == (
        ROWS,
        first.created_count,
        first.bad_count,
    )
    assert len({line for line, _column, _code in problems(first)}) == first.bad_count
    assert len(set(Member.objects.values_list("member_no", flat=True))) == first.created_count
    events = ConsentEvent.objects.count()
    assert events > 0

    second = import_file(kind="members", file_name="big.csv", content=content, actor_label="test")

    assert second.created_count == 0
    assert second.existing_count == first.created_count
    assert second.bad_count == first.bad_count
    assert problems(second) == problems(first)
    assert Member.objects.count() == first.created_count
    assert ConsentEvent.objects.count() == events
    assert AuditEntry.objects.filter(action="member.import").count() == 2  # one a run


def test_bad_values_are_row_errors_on_the_two_writers_too(monkeypatch):
    # NUL characters, dates of the year 1 and 9999, over-long cells: the row checker stops
    # each before COPY, so every batch's good rows are written and the run ends done.
    from tests.members.test_import_members import BAD_VALUE_PROBLEMS, BAD_VALUES

    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 3)

    done = import_file(
        kind="members", file_name="bad.csv", content=BAD_VALUES.encode(), actor_label="t"
    )

    assert done.status == ImportRun.Status.DONE
    assert [(line, column) for line, column, _code in problems(done)] == [
        (line, column) for line, column, _text in BAD_VALUE_PROBLEMS
    ]
    assert sorted(Member.objects.values_list("import_source_id", flat=True)) == ["V1", "V13"]
