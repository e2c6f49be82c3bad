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
# Private names another app may still reach while the work that makes them public is under
# way: (importing file, name). Each entry must still occur — the test fails on a stale one —
# so the list only shrinks; issue 11 emptied it.
PENDING: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    path: str  # the importing file, relative to the repository
    line: int
    module: str  # the absolute dotted module imported from (or imported)
    name: str  # the name imported from it ("" for `import module`)
    asname: str = ""  # the local name when `as` gives one


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


def imports_of(path: Path, source: str | None = None) -> list[Import]:
    """Every import in the file, wherever it is (TYPE_CHECKING blocks and functions too).

    `source`: the file's text, when it is not (yet) on disk."""
    tree = ast.parse(source or path.read_text(encoding="utf-8"), filename=str(path))
    relative_path = str(path.relative_to(ROOT))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                Import(relative_path, node.lineno, alias.name, "", alias.asname or "")
                for alias in node.names
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found += [
                Import(relative_path, node.lineno, module, a.name, a.asname or "")
                for a in node.names
            ]
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


def private_uses_of(path: Path, source: str | None = None) -> list[tuple[int, str, str]]:
    """(line, private name, module) where the file reaches into an app module's private
    name by attribute (`ledger._credit` after `from points import ledger`) or by a dotted
    string (`monkeypatch.setattr("members.imports._numbers_draw", …)`)."""
    modules = {module_name(module) for module in app_modules()}
    bound: dict[str, str] = {}  # local name → app module it stands for
    for imported in imports_of(path, source):
        if not imported.name and app_of(imported.module):
            if imported.asname:
                bound[imported.asname] = imported.module
            else:
                bound[imported.module.split(".")[0]] = imported.module.split(".")[0]
        elif f"{imported.module}.{imported.name}" in modules:
            bound[imported.asname or imported.name] = f"{imported.module}.{imported.name}"
    tree = ast.parse(source or path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            dotted, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                dotted.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound and not node.attr.startswith("__"):
                module = ".".join([bound[value.id], *dotted[:-1]])
                if module in modules:
                    found.append((node.lineno, node.attr, module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            module, _dot, name = node.value.rpartition(".")
            if module in modules and name.startswith("_") and not name.startswith("__"):
                found.append((node.lineno, name, module))
    return found


def private_imports() -> list[tuple[str, str, str]]:
    """(file, private name, where) of every use of another app's private name, tests included
    (a test may use the tested app's public names only): imported, or reached by attribute."""
    found = []
    for app, imported in all_imports():
        target = app_of(imported.module)
        if target is not None and target != app and (part := private_part(imported)):
            found.append((imported.path, part, f"{imported.line}: {part} from {imported.module}"))
    for path in app_modules():
        app = module_name(path).split(".")[0]
        for line, name, module in private_uses_of(path):
            if app_of(module) != app:
                found.append((str(path.relative_to(ROOT)), name, f"{line}: {name} of {module}"))
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for imported in imports_of(path):
            if app_of(imported.module) is not None and (part := private_part(imported)):
                found.append(
                    (imported.path, part, f"{imported.line}: {part} from {imported.module}")
                )
        for line, name, module in private_uses_of(path):
            found.append((str(path.relative_to(ROOT)), name, f"{line}: {name} of {module}"))
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


@pytest.mark.parametrize("app", APPS)
def test_no_app_has_an_import_cycle_among_its_modules(app):
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
        ("from points import ledger\nledger._credit()\nledger.points_credit()\n", ["_credit"]),
        ("from devtools import loadgen as lg\nlg._SqlLoad._indexes_drop\n", ["_SqlLoad"]),
        ("import members.imports\nmembers.imports._records\n", ["_records"]),
        ('patch("members.imports._numbers_draw")\n', ["_numbers_draw"]),
    ],
)
def test_the_checker_finds_private_names(source, expected):
    path = ROOT / "tests" / "layering_probe.py"  # read from `source`, never written

    found = [private_part(imported) for imported in imports_of(path, source)]
    found += [name for _line, name, _module in private_uses_of(path, source)]

    assert [part for part in found if part] == expected


def test_the_checker_finds_a_cycle():
    assert cycle_in({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) == []
