"""A kind of import of the tests' own, which writes nothing but remembers what it was given."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.db import DataError, IntegrityError

from core.imports import (
    BatchResult,
    ImportKind,
    ImportPage,
    import_kind_register,
    import_kind_unregister,
)


@dataclass
class NoteRow:
    line: int
    ref: str
    errors: list = field(default_factory=list)


class NoteJob:
    """Rows `ref,text`: a text "bad" is the row's own error; the database (here: the writer)
    refuses "refused", and a first attempt at a batch with "raced" meets a unique index."""

    written: list[str] = []
    attempts: list[int] = []

    def __init__(self, run, header, nul):
        self.ref, self.text = header.positions["ref"], header.positions["text"]

    def check(self, line, fields):
        row = NoteRow(line=line, ref=fields[self.ref])
        if fields[self.text] == "bad":
            row.errors.append(("text", "bad_text", {"value": "bad"}))
        row.text = fields[self.text]
        return row

    @staticmethod
    def deal(row):
        return bool(row.errors), None

    @staticmethod
    def problem(row):
        return row.line, row.ref, row.errors

    @staticmethod
    def ident(row):
        return row.line, row.ref

    def write(self, batch, *, attempt, parallel):
        NoteJob.attempts.append(attempt)
        texts = [row.text for row in batch.good]
        if "refused" in texts:
            raise DataError("value too long for type character varying(5)\nCONTEXT: COPY")
        if "raced" in texts and attempt == 0:
            raise IntegrityError("duplicate key value violates unique constraint")
        NoteJob.written.extend(row.ref for row in batch.good)
        return BatchResult(created=len(texts), points=len(texts))


NOTES = ImportKind(
    name="notes",
    label="Notes",
    columns=(("ref", True, "Reference."), ("text", True, "Text.")),
    messages={"bad_text": "“%(value)s” is no text.", "row_refused": "Refused: %(reason)s"},
    permission="members.import_members",
    job=NoteJob,
    ref_column="ref",
    audit_action="member.import",
    page=ImportPage(title="Import notes", explain="Notes.", example="ref,text\nN1,hello"),
    writers=1,
)


@pytest.fixture
def notes():
    NoteJob.written, NoteJob.attempts = [], []
    import_kind_register(NOTES)
    yield NoteJob
    import_kind_unregister("notes")
