"""The command base every `import_<kind>` command is made of."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from core.imports.command import ImportCommand

pytestmark = pytest.mark.django_db


class NotesCommand(ImportCommand):
    kind = "notes"
    label = "manage.py import_notes"
    about = "Import notes."


def call(*args):
    out, err = StringIO(), StringIO()
    with translation.override("en"):
        call_command(NotesCommand(), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_progress_bad_lines_and_a_summary(notes, tmp_path, monkeypatch):
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 2)
    path = tmp_path / "notes.csv"
    path.write_text("ref,text\nN1,ok\nN2,bad\nN3,ok\n")

    out, err = call(str(path))

    assert "line 3: text: “bad” is no text." in out
    assert "Imported notes.csv: 3 rows. Created: 2. Already imported: 0. Bad rows: 1." in out
    assert "Fix the bad rows and run the same file again" in out
    assert err.splitlines()[-1].startswith("3 / 3 rows (100%)")
    assert call(str(path), "--quiet-progress")[1] == ""


def test_the_help_lists_the_kinds_columns_and_its_options(notes):
    assert "ref (required): Reference." in NotesCommand.help
    from points.management.commands.import_balances import Command as Balances
    from points.management.commands.import_purchases import Command as Purchases

    assert "--history" in Purchases().create_parser("manage.py", "import_purchases").format_help()
    assert "--history" not in Balances().create_parser("manage.py", "import_balances").format_help()


def test_an_unreadable_or_unknown_file_is_a_command_error(notes, tmp_path):
    with pytest.raises(CommandError):
        call(str(tmp_path / "missing.csv"))
    (tmp_path / "sheet.csv").write_bytes(b"PK\x03\x04workbook")
    with pytest.raises(CommandError, match="not a CSV file"):
        call(str(tmp_path / "sheet.csv"))
