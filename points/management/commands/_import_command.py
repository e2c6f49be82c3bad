"""What `import_purchases` and `import_balances` share: read the file, run, report.

Progress goes to stderr after every batch; the summary and each bad line go to stdout.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from points.imports import (
    COLUMNS,
    ImportFileError,
    ImportProgress,
    import_error_message,
    points_import_error_list,
    points_import_file,
)


def progress_line(progress: ImportProgress) -> str:
    return _("%(done)s / %(total)s rows (%(percent)s%%) · %(rate)s rows/s") % {
        "done": f"{progress.processed:,}",
        "total": f"{progress.total:,}",
        "percent": progress.processed * 100 // max(progress.total, 1),
        "rate": f"{progress.rows_per_second:,.0f}",
    }


def columns_help(kind: str) -> str:
    return "; ".join(
        f"{name}{' (required)' if required else ''}: {text}"
        for name, required, text in COLUMNS[kind]
    )


class ImportCommand(BaseCommand):
    kind: str
    label: str

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path of the CSV file.")
        parser.add_argument(
            "--quiet-progress", action="store_true", help="Do not print progress to stderr."
        )

    def handle(self, *args, file: str, quiet_progress: bool, **options) -> None:
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
            points_import = points_import_file(
                kind=self.kind,
                file_name=path.name,
                content=content,
                actor_label=self.label,
                progress=None if quiet_progress else report,
            )
        except ImportFileError as exc:
            raise CommandError(_("%(file)s: %(error)s") % {"file": file, "error": exc}) from None

        for error in points_import_error_list(points_import=points_import).iterator():
            self.stdout.write(
                _("line %(line)s: %(column)s%(reason)s")
                % {
                    "line": error.line,
                    "column": f"{error.column}: " if error.column else "",
                    "reason": import_error_message(error),
                }
            )
        self.stdout.write(
            _(
                "Imported %(file)s: %(rows)s rows. Imported: %(created)s. "
                "Already imported: %(existing)s. Bad rows: %(bad)s. Points posted: %(points)s."
            )
            % {
                "file": points_import.file_name,
                "rows": points_import.processed_rows,
                "created": points_import.created_count,
                "existing": points_import.existing_count,
                "bad": points_import.bad_count,
                "points": points_import.points_posted,
            }
        )
        if points_import.bad_count:
            self.stdout.write(_("Fix the bad rows and run the same file again to add them."))
