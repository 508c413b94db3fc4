"""The rooms of docs/ARCHITECTURE.md hold: each imports only what its row allows, no import circles,
packages entered through their ``__init__``, no long module without a reason at its top.

Imports are read from the source (``ast``), those inside functions included: a lazy import is still
a dependency, only a later one.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"
LONG = 600  # lines; a longer module says why at its top
REASON = "Why this module is long:"
FRONT_DOORS = {  # package -> the modules outside code may import
    "shared.policy": {"shared.policy", "shared.policy.aliases", "shared.policy.importing"},
    "shared.catalog": {"shared.catalog"},
    "shared.report": {"shared.report"},
    "shared.cli": {"shared.cli"},
}
PURE = ("shared.policy", "shared.domain", "shared.catalog", "shared.service")


def _modules() -> dict[str, Path]:
    files = [*REPO.glob("shared/**/*.py"), *REPO.glob("handlers/**/*.py"), REPO / "function_app.py"]
    found = {}
    for path in files:
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(module imported, line) for every import in the file, absolute names; a project module's
    ``from X import name`` counts as importing ``X.name`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            found += [(s, node.lineno) for s in subs] if len(subs) == len(node.names) else [(target, node.lineno)]
    return found


def _project(target: str) -> str | None:
    """The project module an import reaches (``shared.policy.paths.parse_path`` -> ``shared.policy.paths``)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _rooms() -> dict[str, set[str]]:
    text = ARCHITECTURE.read_text()
    table = text[text.index("<!-- rooms:"):]
    rooms = {}
    for line in table.splitlines()[3:]:
        if not line.startswith("|"):
            break
        room, _, allowed = (cell.strip() for cell in line.strip("|").split("|"))
        rooms[room.strip("`")] = set() if allowed == "-" else {a.strip(" `") for a in allowed.split(",")}
    return rooms


ROOMS = _rooms()


def _room(module: str) -> str | None:
    matches = [r for r in ROOMS if module == r or module.startswith(r + ".")]
    return max(matches, key=len) if matches else None


def test_the_table_is_read_and_names_real_modules():
    assert len(ROOMS) >= 10
    for room, allowed in ROOMS.items():
        assert room in MODULES, f"docs/ARCHITECTURE.md names a room {room!r} that is no module"
        assert allowed <= set(ROOMS), f"{room} may import {allowed - set(ROOMS)}: not rooms of the table"


def test_every_module_is_in_a_room():
    homeless = sorted(m for m in MODULES if m != "shared" and _room(m) is None)
    assert homeless == [], f"modules in no room of docs/ARCHITECTURE.md: {homeless}"


def _not_allowed() -> list[str]:
    wrong = []
    for module, path in sorted(MODULES.items()):
        room = _room(module)
        if room is None:
            continue
        for target, line in _imports(module, path):
            reached = _project(target)
            if reached is None or reached == "shared":
                continue
            other = _room(reached)
            if other != room and other not in ROOMS[room]:
                wrong.append(f"{path.relative_to(REPO)}:{line} ({room}) imports {reached} ({other})")
    return wrong


def test_each_room_imports_only_what_its_row_allows():
    assert _not_allowed() == []


def test_no_import_circles():
    """Between modules, lazy imports included; importing ``a.b.c`` also runs ``a.b``'s ``__init__``."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _ in _imports(module, path):
            reached = _project(target)
            while reached and reached != module and not module.startswith(reached + "."):
                edges[module].add(reached)
                reached = reached.rpartition(".")[0] if "." in reached else None
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert circles == []


@pytest.mark.parametrize("package", sorted(FRONT_DOORS))
def test_a_package_is_entered_through_its_front_door(package):
    inside = []
    for module, path in MODULES.items():
        if module == package or module.startswith(package + "."):
            continue
        for target, line in _imports(module, path):
            reached = _project(target)
            if reached and reached.startswith(package + ".") and reached not in FRONT_DOORS[package]:
                inside.append(f"{path.relative_to(REPO)}:{line} imports {reached}")
    assert inside == [], f"use what {package}/__init__.py names"


def test_the_pure_core_imports_no_azure_sdk():
    found = [f"{path.relative_to(REPO)}:{line} imports {target}"
             for module, path in MODULES.items() if _room(module) in PURE
             for target, line in _imports(module, path) if target.split(".")[0] == "azure"]
    assert found == []


def test_the_rule_engine_modules_import_only_those_before_them():
    order = ["paths", "values", "functions", "expressions", "operators", "evidence", "codegen", "conditions", "applicability"]
    wrong = []
    for i, name in enumerate(order):
        path = REPO / "shared" / "policy" / f"{name}.py"
        for target, line in _imports(f"shared.policy.{name}", path):
            reached = _project(target)
            if reached and reached.startswith("shared"):
                before = {f"shared.policy.{n}" for n in order[:i]}
                if reached not in before:
                    wrong.append(f"shared/policy/{name}.py:{line} imports {reached}")
    assert wrong == []


def _long_without_reason() -> list[str]:
    files = [p for p in (*MODULES.values(), *REPO.glob("infra/**/*.py"), *REPO.glob("bench/*.py"),
                         *REPO.glob("tests/**/*.py"))]
    found = []
    for path in files:
        text = path.read_text()
        lines = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if lines > LONG and REASON not in doc:
            found.append(f"{path.relative_to(REPO)}: {lines} lines")
    return found


def test_no_module_is_long_without_a_reason_at_its_top():
    assert _long_without_reason() == [], f"split it, or say why at the top ({REASON!r} in the docstring)"


def test_the_checks_see_a_violation(tmp_path, monkeypatch):
    """The readers above find what they look for: an import hidden in a function, a relative one, a long file."""
    sample, long = tmp_path / "sample.py", tmp_path / "long.py"
    (tmp_path / "arm.py").write_text("")
    sample.write_text("def f():\n    from ..adapters import arm\n    import azure.identity\n")
    long.write_text('"""A long one."""\n' + "x = 1\n" * LONG)
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "MODULES", {"shared.domain.sample": sample, "shared.domain.long": long,
                                          "shared.adapters.arm": tmp_path / "arm.py"})
    monkeypatch.setattr(this, "REPO", tmp_path)
    assert _imports("shared.domain.sample", sample) == [("shared.adapters.arm", 2), ("azure.identity", 3)]
    assert _not_allowed() == ["sample.py:2 (shared.domain) imports shared.adapters.arm (shared.adapters)"]
    assert _long_without_reason() == ["long.py: 601 lines"]
