"""The house rules, checked on the code itself so they stay true.

Imports are read with ``ast`` from every app module, at module level and inside functions
alike (a function-level import is still an arrow): ``portal -> runner -> automation_scripts``,
``portal, runner -> storage``; nothing below ``portal/`` imports Flask; no import cycles; no app
module over 600 lines.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "runner", "automation_scripts", "storage")
MAX_LINES = 600

# What each top-level package may import from the project (itself always).
ALLOWED = {
    "storage": set(),
    "automation_scripts": set(),
    "runner": {"automation_scripts", "storage"},
    "portal": {"runner", "automation_scripts", "storage"},
    "main_portal_app": {"portal", "runner", "automation_scripts", "storage"},
}
FLASK_WORLD = ("flask", "flask_login", "flask_socketio", "flask_wtf", "flask_limiter",
               "werkzeug", "socketio", "engineio")


@dataclass(frozen=True)
class Import:
    source: str        # the importing module
    target: str        # the imported module (a project module when it is one)
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def app_files() -> list[Path]:
    files = [ROOT / "main_portal_app.py"]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]


def project_modules() -> set[str]:
    return {module_name(f) for f in app_files()}


def _resolve_relative(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    base = source.split(".") if is_package else source.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_in(text: str, source: str, is_package: bool, modules: set[str]) -> list[Import]:
    """Every import in ``text`` (module ``source``), at any depth, named by the most specific
    project module it reaches."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found += [Import(source, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (_resolve_relative(source, is_package, node)
                    if node.level else node.module or "")
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append(Import(source, submodule if submodule in modules else base,
                                    node.lineno))
    return found


def imports_of(path: Path, modules: set[str]) -> list[Import]:
    return imports_in(path.read_text(encoding="utf-8"), module_name(path),
                      path.name == "__init__.py", modules)


def all_imports() -> list[Import]:
    modules = project_modules()
    return [imp for f in app_files() for imp in imports_of(f, modules)]


def top(name: str) -> str:
    return name.split(".", 1)[0]


def test_arrows_point_one_way() -> None:
    wrong = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports()
             if top(i.target) in ALLOWED and top(i.target) != top(i.source)
             and top(i.target) not in ALLOWED[top(i.source)]]
    assert wrong == []


def test_nothing_below_portal_knows_flask() -> None:
    wrong = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports()
             if top(i.source) in ("runner", "automation_scripts", "storage")
             and top(i.target) in FLASK_WORLD]
    assert wrong == []


def test_automations_know_no_store_runner_or_portal() -> None:
    wrong = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports()
             if top(i.source) == "automation_scripts"
             and top(i.target) in ("storage", "runner", "portal")]
    assert wrong == []


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}          # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    modules = project_modules()
    edges: dict[str, set[str]] = {}
    for imp in all_imports():
        if imp.target in modules and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    """The check above can fail: a two-module and a three-module cycle are found."""
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_function_level_and_relative_imports_are_seen() -> None:
    """An import inside a function counts as an arrow like any other; relative ones resolve."""
    modules = project_modules()
    text = ("def f():\n    from portal.services import services\n"
            "from . import base\nfrom .base import Store\n")
    targets = {i.target for i in imports_in(text, "storage.probe", False, modules)}
    assert targets == {"portal.services", "storage.base"}


@pytest.mark.parametrize("path", app_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_app_module_over_the_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (max {MAX_LINES})"
