"""Running an import: one threaded reader, writer connections, batch halving, progress.

`import_start` checks the file as a whole (encoding, header, at least one row) and records
the run, raising `ImportFileError` before anything is written; `import_run` does the rows in
batches of `BATCH_SIZE` — each batch one transaction that writes the good rows (the kind's
writer), the bad rows' errors and the run's counters — and one audit entry for the run.

A thread reads and checks the rows (pure Python, no database) while the writers wait for
PostgreSQL to write the previous batches: psycopg lets go of the GIL while it waits. On
PostgreSQL `writers` connections write batches side by side, the rows dealt out by the key
the kind names (the member, so that two writers seldom want one account lock) or, without
one, whole batches in turn. A batch the database refuses is written in halves down to the
row it refuses, which is reported: the run goes on and no batch is ever written in part.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import DataError, IntegrityError, OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from core.models import ImportRowError, ImportRun

from .files import (
    ImportFileError,
    bulk_python,
    decode,
    records_count,
    refusal_reason,
    text_read,
    text_without_nul,
)
from .registry import Batch, BatchResult, ImportJob, ImportKind, hooks, import_kind_get

BATCH_SIZE = 5000
MAX_ERRORS_SHOWN = 500


@dataclass(frozen=True)
class ImportProgress:
    processed: int
    total: int
    created: int
    existing: int
    bad: int
    points: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[ImportProgress], None]


# --- Reading thread -------------------------------------------------------------------------


class Reader:
    """Reads and checks the rows a batch at a time in a thread, into one queue per writer."""

    _DONE = object()

    def __init__(
        self, *, records: Iterator[tuple[int, list[str]]], job: ImportJob, parts: int = 1
    ) -> None:
        self.records = records
        self.job = job
        self.queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=2) for _ in range(parts)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="import-reader", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()

    def batches(self, part: int = 0) -> Iterator[Batch]:
        source = self.queues[part]
        while True:
            try:
                item = source.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    return  # another writer failed: the reader has stopped
                continue
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _put(self, part: int, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queues[part].put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        parts = len(self.queues)
        size = BATCH_SIZE
        try:
            check, deal = self.job.check, self.job.deal
            pending = [Batch(size=0, good=[], bad=[]) for _ in range(parts)]
            part = turn = seq = 0
            for line, fields in self.records:
                row = check(line, fields)
                bad, key = deal(row)
                if parts > 1:
                    part = turn if key is None else hash(key) % parts
                batch = pending[part]
                (batch.bad if bad else batch.good).append(row)
                batch.size += 1
                if batch.size >= size:
                    batch.seq, seq = seq, seq + 1
                    if not self._put(part, batch):
                        return
                    pending[part] = Batch(size=0, good=[], bad=[])
                    turn = (turn + 1) % parts
            for part, batch in enumerate(pending):
                if batch.size:
                    batch.seq, seq = seq, seq + 1
                    if not self._put(part, batch):
                        return
            for part in range(parts):
                self._put(part, self._DONE)
        except BaseException as exc:  # handed to the writers, which raise it
            for part in range(parts):
                self._put(part, exc)


# --- Writing --------------------------------------------------------------------------------


class Importer:
    def __init__(
        self, *, run: ImportRun, kind: ImportKind, progress: ProgressCallback | None, writers: int
    ) -> None:
        self.run_row = run
        self.kind = kind
        self.progress = progress
        self.processed = self.created = self.existing = self.bad = self.points = 0
        self.started = time.monotonic()
        # Writer threads have connections of their own, which cannot see rows the caller
        # has not committed: inside a transaction (tests, mostly) the caller's thread
        # writes alone. SQLite takes one writer at a time anyway.
        self.writers = (
            1
            if connection.in_atomic_block or connection.vendor != "postgresql"
            else max(1, writers)
        )
        self.lock = threading.Lock()
        self.failure: BaseException | None = None
        self.job: ImportJob | None = None
        # Progress is told in file order: the figures of batches that finished before an
        # earlier one wait for it (writers finish their batches in any order).
        self.finished: dict[int, tuple[int, int, int, int, int]] = {}
        self.next_seq = 0
        self.told = (0, 0, 0, 0, 0)

    def run(self, content: bytes) -> None:
        text = decode(content)
        header, found = text_read(text, columns=self.kind.columns, one_of=self.kind.one_of)
        self.job = self.kind.job(self.run_row, header, "\x00" in text)
        reader = Reader(records=found, job=self.job, parts=self.writers)
        with bulk_python():
            reader.start()
            try:
                if self.writers == 1:
                    for batch in reader.batches():
                        self._flush(batch)
                    return
                threads = [
                    threading.Thread(
                        target=self._writer, args=(reader, part), name=f"import-writer-{part}"
                    )
                    for part in range(self.writers)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                if self.failure is not None:
                    raise self.failure
            finally:
                reader.close()

    def _writer(self, reader: Reader, part: int) -> None:
        """One writer thread: the batches of its part, on its own connection."""
        try:
            for batch in reader.batches(part):
                self._flush(batch)
        except BaseException as exc:  # raised by the main thread once all have stopped
            with self.lock:
                self.failure = self.failure or exc
            reader.stop.set()
        finally:
            connection.close()

    def _flush(self, batch: Batch) -> None:
        result, bad = self._write_split(batch)
        figures = (batch.size, result.created, result.existing, bad, result.points)
        with self.lock:
            self.processed += batch.size
            self.created += result.created
            self.existing += result.existing
            self.bad += bad
            self.points += result.points
            self.finished[batch.seq] = figures
            while self.next_seq in self.finished:
                step = self.finished.pop(self.next_seq)
                self.told = tuple(a + b for a, b in zip(self.told, step, strict=True))
                self.next_seq += 1
                if self.progress is not None:
                    self.progress(self._progress())

    def _write_split(self, batch: Batch) -> tuple[BatchResult, int]:
        """Write a batch; one whose values the database refuses is written in halves.

        The row checker keeps every value the database would refuse from a batch; should
        one get past it all the same, the batch's transaction rolls back and its halves are
        written on their own, down to the row the database refuses, which is reported as
        that row's error: the run goes on, and no batch is ever written in part.
        (result, bad lines).
        """
        try:
            return self._write_retrying(batch)
        except (DataError, OverflowError) as exc:
            good = batch.good
            if not good:
                raise
            if len(good) == 1:
                line, ref = self.job.ident(good[0])
                refused = (
                    line,
                    text_without_nul(ref)[:100],
                    [("", "row_refused", {"reason": refusal_reason(exc)})],
                )
                return self._write_retrying(
                    Batch(size=batch.size, good=[], bad=batch.bad), refused=[refused]
                )
            middle = len(good) // 2
            first, first_bad = self._write_split(
                Batch(size=middle + len(batch.bad), good=good[:middle], bad=batch.bad)
            )
            second, second_bad = self._write_split(
                Batch(size=len(good) - middle, good=good[middle:], bad=[])
            )
            return (
                BatchResult(
                    created=first.created + second.created,
                    existing=first.existing + second.existing,
                    points=first.points + second.points,
                ),
                first_bad + second_bad,
            )

    def _write_retrying(self, batch: Batch, refused: list | None = None) -> tuple[BatchResult, int]:
        for attempt in range(3):
            try:
                with transaction.atomic():
                    return self._write(batch, attempt=attempt, refused=refused or [])
            except IntegrityError:
                # Someone wrote one of these rows (a till, an enrolment) after our check, or
                # a drawn number was taken: the batch was rolled back whole; check it again
                # (nothing of the attempt is kept).
                if attempt == 2:
                    raise
            except OperationalError as exc:
                # Two writers waited on each other (a new account, a drawn number):
                # PostgreSQL broke the deadlock by rolling this batch back whole.
                if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) != "40P01":
                    raise
        raise AssertionError("unreachable")

    def _write(self, batch: Batch, *, attempt: int, refused: list) -> tuple[BatchResult, int]:
        parallel = self.writers > 1
        if batch.good:
            result = self.job.write(batch, attempt=attempt, parallel=parallel)
        else:
            result = BatchResult()
        problems = [*result.problems, *map(self.job.problem, batch.bad), *refused]
        run_id = self.run_row.pk
        ImportRowError.objects.bulk_create(
            [
                ImportRowError(
                    run_id=run_id, line=line, ref=ref, column=column, code=code, params=params
                )
                for line, ref, errors in problems
                for column, code, params in errors
            ],
            batch_size=1000,
        )
        if parallel:
            # Check the batch's foreign keys now, not at commit: the update below locks the
            # run's row until the commit, and the other writer's update waits for it.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Increments, not totals: with several writers the batches commit in either order.
        ImportRun.objects.filter(pk=run_id).update(
            processed_rows=F("processed_rows") + batch.size,
            created_count=F("created_count") + result.created,
            existing_count=F("existing_count") + result.existing,
            bad_count=F("bad_count") + len(problems),
            points_posted=F("points_posted") + result.points,
        )
        return result, len(problems)

    def _progress(self) -> ImportProgress:
        processed, created, existing, bad, points = self.told
        return ImportProgress(
            processed=processed,
            total=self.run_row.total_rows,
            created=created,
            existing=existing,
            bad=bad,
            points=points,
            seconds=time.monotonic() - self.started,
        )


# --- Services -------------------------------------------------------------------------------


def import_start(
    *,
    kind: str,
    file_name: str,
    content: bytes,
    actor: Any = None,
    actor_label: str = "",
    options: dict[str, Any] | None = None,
    keep_content: bool = True,
) -> ImportRun:
    """Check the file as a whole and record it, ready to run; raises `ImportFileError`.

    Nothing is written for a file that is not UTF-8 CSV with the required header and at
    least one row. An upload keeps the file in the row, for the worker that runs it; the
    command line, which runs the file at once, keeps only its name and checksum.
    """
    spec = import_kind_get(kind)
    text = decode(content)
    header, found = text_read(text, columns=spec.columns, one_of=spec.one_of)
    total = records_count(text, found)
    if total == 0:
        raise ImportFileError(
            str(spec.empty_message) or gettext("The file has a header but no rows below it.")
        )
    if actor is not None and actor.is_authenticated:
        actor_label = str(actor)
    else:
        actor = None
    allowed = {name for name, _label, _help in spec.page.options}
    return ImportRun.objects.create(
        kind=kind,
        file_name=text_without_nul(os.path.basename(file_name))[:255] or f"{kind}.csv",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        content=content if keep_content else b"",
        columns=header.columns,
        ignored_columns=header.ignored,
        options={name: value for name, value in (options or {}).items() if name in allowed},
        total_rows=total,
        actor=actor,
        actor_label=actor_label,
    )


def import_run(
    *,
    run_id: int,
    content: bytes | None = None,
    progress: ProgressCallback | None = None,
    writers: int | None = None,
) -> ImportRun:
    """Import the rows of a started run; safe to call twice (a finished run is kept).

    `content` is the file when the caller still holds it; otherwise the kept copy is read.
    A run interrupted part-way (a worker killed) starts again from the top: the batches it
    committed are found by their keys and counted as already imported.
    """
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().defer("content").get(pk=run_id)
        if run.is_finished:
            return run
        run.status = ImportRun.Status.RUNNING
        run.started_at = timezone.now()
        run.processed_rows = run.created_count = run.existing_count = 0
        run.bad_count = run.points_posted = 0
        run.save(
            update_fields=[
                "status",
                "started_at",
                "processed_rows",
                "created_count",
                "existing_count",
                "bad_count",
                "points_posted",
            ]
        )
        run.errors.all().delete()
    if content is None:
        content = bytes(ImportRun.objects.values_list("content", flat=True).get(pk=run_id))
    kind = import_kind_get(run.kind)
    importer = Importer(
        run=run, kind=kind, progress=progress, writers=kind.writers if writers is None else writers
    )
    try:
        importer.run(content)
    except Exception as exc:
        _finish(run=run, kind=kind, importer=importer, failure=f"{type(exc).__name__}: {exc}")
        raise
    return _finish(run=run, kind=kind, importer=importer)


def _finish(
    *, run: ImportRun, kind: ImportKind, importer: Importer, failure: str = ""
) -> ImportRun:
    run.status = ImportRun.Status.FAILED if failure else ImportRun.Status.DONE
    run.failure = failure
    run.finished_at = timezone.now()
    run.processed_rows = importer.processed
    run.created_count = importer.created
    run.existing_count = importer.existing
    run.bad_count = importer.bad
    run.points_posted = importer.points
    with transaction.atomic():
        ImportRun.objects.filter(pk=run.pk).update(
            status=run.status,
            failure=failure,
            finished_at=run.finished_at,
            processed_rows=importer.processed,
            created_count=importer.created,
            existing_count=importer.existing,
            bad_count=importer.bad,
            points_posted=importer.points,
        )
        if hooks.audit is not None:
            # One entry for the whole run, not one per row: the counts say what it did.
            hooks.audit(
                actor=run.actor,
                actor_label=run.actor_label,
                action=kind.audit_action,
                target=run,
                details={
                    "file_name": run.file_name,
                    "sha256": run.sha256,
                    "status": run.status,
                    **({"history": True} if run.history else {}),
                    "rows": importer.processed,
                    kind.created_label: importer.created,
                    "already_imported": importer.existing,
                    "bad_rows": importer.bad,
                    **({"points": importer.points} if kind.posts_points else {}),
                    "seconds": round(time.monotonic() - importer.started, 3),
                    **({"failure": failure} if failure else {}),
                },
            )
    return run


def import_file(
    *,
    kind: str,
    file_name: str,
    content: bytes,
    actor: Any = None,
    actor_label: str = "",
    options: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    writers: int | None = None,
) -> ImportRun:
    """Start and run an import in one go (the command line and the benchmarks)."""
    run = import_start(
        kind=kind,
        file_name=file_name,
        content=content,
        actor=actor,
        actor_label=actor_label,
        options=options,
        keep_content=False,
    )
    return import_run(run_id=run.pk, content=content, progress=progress, writers=writers)


# --- Reads ----------------------------------------------------------------------------------


def import_get(*, run_id: int, kind: str | None = None) -> ImportRun | None:
    # The file can be megabytes; the progress page polls every second and never needs it.
    runs = ImportRun.objects.defer("content").filter(pk=run_id)
    if kind is not None:
        runs = runs.filter(kind=kind)
    return runs.first()


def import_list(*, kind: str, limit: int = 20) -> QuerySet[ImportRun]:
    return (
        ImportRun.objects.defer("content").filter(kind=kind).order_by("-created_at", "-id")[:limit]
    )


def import_error_list(*, run: ImportRun) -> QuerySet[ImportRowError]:
    return run.errors.order_by("line", "id")


def import_error_message(error: ImportRowError, *, kind: str | None = None) -> str:
    """The reason for one problem, in the current language."""
    if kind is None:
        kind = ImportRun.objects.values_list("kind", flat=True).get(pk=error.run_id)
    template = import_kind_get(kind).messages.get(error.code)
    if template is None:
        return error.code
    try:
        return str(template) % error.params if error.params else str(template)
    except (KeyError, TypeError, ValueError):
        return str(template)
