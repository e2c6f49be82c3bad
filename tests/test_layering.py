"""The apps' dependency direction, read from the source with `ast`.

ARCHITECTURE.md: `core ← members ← tiers ← points ← analytics ← campaigns` — an app imports
only from apps to its left, and only their public names; `devtools` may import them all and
nothing but the tests imports `devtools`. Imports inside functions count as much as those at
the top of a module: a lazy import hides a dependency, it does not remove it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("core", "members", "tiers", "points", "analytics", "campaigns")
APPS = (*ORDER, "devtools")
# Private names that other work of issue 11 makes public or moves: the purchase fingerprint
# (the posting plan, points/posting/) and the CSV import framework (into core). Each entry
# must still occur — the test fails on a stale one — so each goes when its work is merged.
PENDING = {
    ("devtools/loadgen.py", "_purchase_fingerprint"),
    ("points/imports.py", "_decode"),
    ("points/imports.py", "_members_matching"),
    ("points/imports.py", "_parse_date"),
    ("points/imports.py", "_parse_datetime"),
    ("points/imports.py", "_records"),
    ("tests/members/test_import_fast_paths.py", "_csv_records"),
    ("tests/members/test_import_fast_paths.py", "_header"),
    ("tests/members/test_import_fast_paths.py", "_numbers_draw"),
    ("tests/members/test_import_fast_paths.py", "_pg_text_array"),
    ("tests/members/test_import_fast_paths.py", "_records"),
    ("tests/members/test_import_fast_paths.py", "_RowChecker"),
    ("tests/members/test_import_members.py", "_numbers_draw"),
    ("tests/members/test_import_members.py", "_numbers_redraw"),
    ("tests/points/test_import_purchases.py", "_purchase_fingerprint"),
    ("tests/devtools/test_loadgen.py", "_purchase_fingerprint"),
}


@dataclass(frozen=True)
class Import:
    path: str  # the importing file, relative to the repository
    line: int
    module: str  # the absolute dotted module imported from (or imported)
    name: str  # the name imported from it ("" for `import module`)


def app_modules() -> list[Path]:
    return sorted(
        path
        for app in APPS
        if (ROOT / app).is_dir()
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[Import]:
    """Every import in the file, wherever it is (TYPE_CHECKING blocks and functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    relative_path = str(path.relative_to(ROOT))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(relative_path, node.lineno, alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found += [Import(relative_path, node.lineno, module, a.name) for a in node.names]
    return found


def app_of(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in APPS else None


def private_part(imported: Import) -> str | None:
    """The underscore name this import reaches into, if any (`_x` or a `_module` path)."""
    for part in [*imported.module.split(".")[1:], imported.name]:
        if part.startswith("_") and not part.startswith("__"):
            return part
    return None


def all_imports() -> list[tuple[str, Import]]:
    return [
        (module_name(path).split(".")[0], imp) for path in app_modules() for imp in imports_of(path)
    ]


def test_the_checker_reads_every_app():
    # A checker that reads nothing passes everything: make sure it sees the apps it guards.
    modules = {module_name(path) for path in app_modules()}
    assert {
        "core.jobs",
        "core.bulk",
        "members.services",
        "points.ledger",
        "devtools.loadgen",
    } <= modules


def test_no_app_imports_an_app_to_its_right():
    wrong = []
    for app, imported in all_imports():
        target = app_of(imported.module)
        if target is None or target == app or app == "devtools":
            continue
        if target == "devtools" or ORDER.index(target) > ORDER.index(app):
            wrong.append(f"{imported.path}:{imported.line} imports {imported.module}")
    assert wrong == []


def private_imports() -> list[tuple[str, str, str]]:
    """(file, line, what) of every import of another app's private name, tests included
    (a test may use the tested app's public names only)."""
    found = []
    for app, imported in all_imports():
        target = app_of(imported.module)
        if target is not None and target != app and (part := private_part(imported)):
            found.append((imported.path, part, f"{imported.line}: {part} from {imported.module}"))
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for imported in imports_of(path):
            if app_of(imported.module) is not None and (part := private_part(imported)):
                found.append(
                    (imported.path, part, f"{imported.line}: {part} from {imported.module}")
                )
    return found


def test_no_module_imports_another_apps_private_names():
    wrong = [
        f"{path}:{what}" for path, part, what in private_imports() if (path, part) not in PENDING
    ]
    assert wrong == []


def test_every_pending_private_import_still_exists():
    # Made public or moved meanwhile: take it off PENDING, so it cannot come back unseen.
    found = {(path, part) for path, part, _what in private_imports()}
    assert PENDING - found == set()


def module_graph(app: str) -> dict[str, set[str]]:
    """Which modules of `app` each module of it imports (functions' imports too)."""
    modules = {
        module_name(path): path for path in app_modules() if module_name(path).startswith(app)
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(path):
            for candidate in (f"{imported.module}.{imported.name}", imported.module):
                if candidate in modules and candidate != name:
                    targets.add(candidate)
                    break
        graph[name] = targets
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of the graph (its modules in order), or [] when there is none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_ledger_and_its_bulk_twin_import_one_way():
    graph = module_graph("points")
    assert not (
        "points.ledger_bulk" in graph["points.ledger"]
        and "points.ledger" in graph["points.ledger_bulk"]
    )


@pytest.mark.parametrize(
    "app",
    [
        pytest.param(
            app, marks=pytest.mark.xfail(strict=True, reason="pending: the import framework move")
        )
        if app == "members"
        else app
        for app in APPS
    ],
)
def test_no_app_has_an_import_cycle_among_its_modules(app):
    # members: services → tasks → imports → services, which the move of the import
    # framework to core (issue 11 §3) takes apart; strict, so the mark goes with it.
    assert cycle_in(module_graph(app)) == []


def test_the_wiring_never_imports_devtools_or_private_names():
    wrong = []
    for path in sorted((ROOT / "loyalty_site").rglob("*.py")):
        for imported in imports_of(path):
            target = app_of(imported.module)
            if target == "devtools" or (target is not None and private_part(imported)):
                wrong.append(f"{imported.path}:{imported.line} imports {imported.module}")
    assert wrong == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from members.services import member_enroll\n", []),
        ("from members.services import _secret\n", ["_secret"]),
        ("from members._private import x\n", ["_private"]),
        ("def f():\n    from members.numbers import _DAMM_TABLE\n", ["_DAMM_TABLE"]),
    ],
)
def test_the_checker_finds_private_names(tmp_path, source, expected):
    path = ROOT / "core" / "_layering_probe.py"
    try:
        path.write_text(source, encoding="utf-8")
        found = [private_part(imported) for imported in imports_of(path)]
    finally:
        path.unlink()
    assert [part for part in found if part] == expected


def test_the_checker_finds_a_cycle():
    assert cycle_in({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) == []
