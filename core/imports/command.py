"""The base of every `manage.py import_<kind> FILE` command: read the file, run, report.

Progress goes to stderr after every batch; the summary and each bad line go to stdout.
A kind's command names its kind and label; its options (`--history`) come from the kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.functional import classproperty
from django.utils.translation import gettext as _

from .files import ImportFileError
from .registry import ImportKind, import_kind_get
from .runner import ImportProgress, import_error_list, import_error_message, import_file


def progress_line(progress: ImportProgress) -> str:
    return _("%(done)s / %(total)s rows (%(percent)s%%) · %(rate)s rows/s") % {
        "done": f"{progress.processed:,}",
        "total": f"{progress.total:,}",
        "percent": progress.processed * 100 // max(progress.total, 1),
        "rate": f"{progress.rows_per_second:,.0f}",
    }


def columns_help(kind: ImportKind) -> str:
    return "; ".join(
        f"{name}{' (required)' if required else ''}: {text}"
        for name, required, text in kind.columns
    )


class ImportCommand(BaseCommand):
    kind: str
    label: str  # who the run and its audit entry name as the actor
    about: str  # what the command does, before the columns

    @classproperty
    def help(cls) -> str:
        return (
            f"{cls.about} Columns: {columns_help(import_kind_get(cls.kind))}. Rows imported "
            "before are skipped, so re-running a file changes nothing. Bad rows are reported "
            "with their line number and not written."
        )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path of the CSV file.")
        parser.add_argument(
            "--quiet-progress", action="store_true", help="Do not print progress to stderr."
        )
        for name, _label, help_text in import_kind_get(self.kind).page.options:
            parser.add_argument(f"--{name}", action="store_true", help=str(help_text))

    def handle(self, *args, file: str, quiet_progress: bool, **options) -> None:
        spec = import_kind_get(self.kind)
        path = Path(file)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s") % {"file": file, "error": exc.strerror}
            ) from None

        def report(progress: ImportProgress) -> None:
            self.stderr.write(progress_line(progress))
            self.stderr.flush()

        try:
            run = import_file(
                kind=self.kind,
                file_name=path.name,
                content=content,
                actor_label=self.label,
                options={name: True for name, _l, _h in spec.page.options if options.get(name)},
                progress=None if quiet_progress else report,
            )
        except ImportFileError as exc:
            raise CommandError(_("%(file)s: %(error)s") % {"file": file, "error": exc}) from None

        for error in import_error_list(run=run).iterator():
            self.stdout.write(
                _("line %(line)s: %(column)s%(reason)s")
                % {
                    "line": error.line,
                    "column": f"{error.column}: " if error.column else "",
                    "reason": import_error_message(error, kind=self.kind),
                }
            )
        self.stdout.write(self.summary(run))
        if run.bad_count:
            self.stdout.write(_("Fix the bad rows and run the same file again to add them."))

    def summary(self, run: Any) -> str:
        figures = {
            "file": run.file_name,
            "rows": run.processed_rows,
            "created": run.created_count,
            "existing": run.existing_count,
            "bad": run.bad_count,
            "points": run.points_posted,
        }
        if run.history:
            return (
                _(
                    "Imported %(file)s as history: %(rows)s rows. Imported: %(created)s. "
                    "Already imported: %(existing)s. Bad rows: %(bad)s. No points were posted."
                )
                % figures
            )
        if import_kind_get(self.kind).posts_points:
            return (
                _(
                    "Imported %(file)s: %(rows)s rows. Imported: %(created)s. "
                    "Already imported: %(existing)s. Bad rows: %(bad)s. Points posted: %(points)s."
                )
                % figures
            )
        return (
            _(
                "Imported %(file)s: %(rows)s rows. Created: %(created)s. "
                "Already imported: %(existing)s. Bad rows: %(bad)s."
            )
            % figures
        )
