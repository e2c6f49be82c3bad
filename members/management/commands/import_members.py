"""`manage.py import_members FILE`: import members from a CSV file exported by an old system.

Progress goes to stderr after every batch; the summary and each bad line go to stdout.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from members.imports import (
    COLUMNS,
    ImportFileError,
    ImportProgress,
    import_error_message,
    member_import_error_list,
    member_import_file,
)


def progress_line(progress: ImportProgress) -> str:
    return _("%(done)s / %(total)s rows (%(percent)s%%) · %(rate)s rows/s") % {
        "done": f"{progress.processed:,}",
        "total": f"{progress.total:,}",
        "percent": progress.processed * 100 // max(progress.total, 1),
        "rate": f"{progress.rows_per_second:,.0f}",
    }


class Command(BaseCommand):
    help = (
        "Import members from a UTF-8 CSV file with a header row. Columns: "
        + "; ".join(
            f"{name}{' (required)' if required else ''}: {text}" for name, required, text in COLUMNS
        )
        + " Rows whose source_id was imported before are skipped, so re-running a file "
        "changes nothing. Bad rows are reported with their line number and not written."
    )

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
            member_import = member_import_file(
                file_name=path.name,
                content=content,
                actor_label="manage.py import_members",
                progress=None if quiet_progress else report,
            )
        except ImportFileError as exc:
            raise CommandError(_("%(file)s: %(error)s") % {"file": file, "error": exc}) from None

        for error in member_import_error_list(member_import=member_import).iterator():
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
                "Imported %(file)s: %(rows)s rows. Created: %(created)s. "
                "Already imported: %(existing)s. Bad rows: %(bad)s."
            )
            % {
                "file": member_import.file_name,
                "rows": member_import.processed_rows,
                "created": member_import.created_count,
                "existing": member_import.existing_count,
                "bad": member_import.bad_count,
            }
        )
        if member_import.bad_count:
            self.stdout.write(_("Fix the bad rows and run the same file again to add them."))
