"""The kinds of CSV import, registered by the apps that own them in `AppConfig.ready()`.

A kind supplies only what is its own: its columns (with their help), its messages, the
permission to run it, and a job factory that gives the run a row checker and a batch writer.
Everything else — decoding, reading, the threads, batch halving, retries, progress, the
run's counters, pages, command and audit entry — is `core.imports`'.

Two hooks let `core` use what the apps left of it cannot offer without importing them: the
back office's access check (a decorator factory, `staff_required(permission)`) and the audit
log (`audit(actor=, actor_label=, action=, target=, details=)`); `members` sets both.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from core.models import ImportRun

    from .files import Column, Header

# (line, ref, [(column, code, params), ...]): one bad line and its problems.
Problem = tuple[int, str, list[tuple[str, str, dict[str, Any]]]]


@dataclass(slots=True)
class Batch:
    """Rows read and checked together, written in one transaction.

    `good` rows go to the kind's writer; `bad` rows (errors found without the database)
    are only reported. `size` counts both, and the rows a refused batch was split from.
    """

    size: int
    good: list[Any]
    bad: list[Any]
    seq: int = 0  # the batch's place in the file, for progress in file order


@dataclass(slots=True)
class BatchResult:
    created: int = 0
    existing: int = 0
    points: int = 0
    # Lines the writer found bad (against the database), with their problems.
    problems: list[Problem] = field(default_factory=list)


class ImportJob(Protocol):
    """One run's checker and writer, made by the kind for the run (`ImportKind.job`)."""

    def check(self, line: int, fields: list[str]) -> Any:
        """The row of one record, with its problems; called in the reading thread."""

    def deal(self, row: Any) -> tuple[bool, Hashable | None]:
        """(whether the row is bad already, the key that keeps its writer: the member, or
        None to deal whole batches in turn)."""

    def problem(self, row: Any) -> Problem:
        """A bad row's line, reference and problems."""

    def ident(self, row: Any) -> tuple[int, str]:
        """A good row's line and reference (for a row the database refused)."""

    def write(self, batch: Batch, *, attempt: int, parallel: bool) -> BatchResult:
        """Write the batch's good rows inside the caller's transaction; `attempt` counts
        the retries after an IntegrityError."""


@dataclass(frozen=True)
class ImportPage:
    """The words of the kind's upload and report pages."""

    title: Any
    explain: Any
    example: str
    # Upload form options the kind takes: (name, label, help).
    options: tuple[tuple[str, Any, Any], ...] = ()
    max_upload_mb: int = 100
    created_title: Any = None  # the report's name for the rows written; None: "Imported"
    columns_note: Any = None  # a sentence after "The first line names the columns…"


@dataclass(frozen=True)
class ImportKind:
    name: str  # in URLs and ImportRun.kind: members, purchases, balances
    label: Any
    columns: Sequence[Column]
    messages: dict[str, Any]
    permission: str
    job: Callable[[ImportRun, Header, bool], ImportJob]  # (run, header, file holds a NUL)
    ref_column: str  # the column that names a row in the report: source_id, receipt_no
    audit_action: str
    page: ImportPage
    one_of: tuple[str, ...] = ()  # the header must name at least one of these
    empty_message: Any = ""
    created_label: str = "imported"  # the audit entry's word for the rows written
    posts_points: bool = False
    writers: int = 2  # PostgreSQL connections writing batches side by side


_KINDS: dict[str, ImportKind] = {}


def import_kind_register(kind: ImportKind) -> None:
    _KINDS[kind.name] = kind


def import_kind_unregister(name: str) -> None:
    """Take a kind off the registry (a test's own kind, when the test is done)."""
    _KINDS.pop(name, None)


def import_kind_get(name: str) -> ImportKind:
    return _KINDS[name]


def import_kinds() -> list[ImportKind]:
    return list(_KINDS.values())


@dataclass
class _Hooks:
    staff_required: Callable[..., Callable] | None = None
    audit: Callable[..., Any] | None = None


hooks = _Hooks()


def import_hooks_register(
    *, staff_required: Callable[..., Callable], audit: Callable[..., Any]
) -> None:
    hooks.staff_required = staff_required
    hooks.audit = audit
