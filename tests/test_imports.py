"""The import rules of docs/architecture.md, read from the source: no module of ours
imports itself back through a circle, no import hides inside a function, and each app
imports only the apps it may."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "accounts", "audit", "billing", "core", "dashboard", "gateway", "nexai", "providers", "reports"
)  # fmt: skip
# Which of our packages each may import (DESIGN.md, docs/architecture.md): `core` is the
# plumbing below every app, `nexai` the project's configuration above them all.
ALLOWED = {
    "core": {"core"},
    "audit": {"audit", "core"},
    "providers": {"providers", "core"},
    "accounts": {"accounts", "audit", "core"},
    "billing": {"billing", "accounts", "audit", "providers", "core"},
    "reports": {"reports", "accounts", "billing", "gateway", "providers", "core"},
    "gateway": {"gateway", "accounts", "audit", "billing", "providers", "core"},
    "dashboard": {
        "dashboard",
        "accounts",
        "audit",
        "billing",
        "gateway",
        "providers",
        "reports",
        "core",
    },
}


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _target(module: str, name: str | None) -> str | None:
    """The module of ours that `from module import name` loads, if any."""
    if name and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module if module in MODULES else None


def _imports(path: Path, *, nested_only: bool = False) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    nodes = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if nested_only and node.col_offset == 0:
            continue
        nodes.append(node)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [(alias.name, None) for alias in node.names]
        elif node.module and node.level == 0:
            names = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in names:
            if module.split(".")[0] in APPS and (target := _target(module, name)):
                found.append((target, node.lineno))
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def _parents(module: str) -> set[str]:
    # Importing a.b.c runs a/__init__ and a/b/__init__ first; those are not circles.
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_module_of_ours_imports_itself_back_through_a_circle() -> None:
    graph = {
        name: {t for t, _ in _imports(path) if t != name and t not in _parents(name)}
        for name, path in MODULES.items()
    }
    assert _cycles(graph) == []


def test_no_import_hides_inside_a_function() -> None:
    # AppConfig.ready() is where Django wants the imports that need the app registry.
    hidden = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in MODULES.items()
        if not name.endswith(".apps")
        for target, line in _imports(path, nested_only=True)
    ]
    assert hidden == []


def test_no_app_imports_the_project_configuration() -> None:
    """Settings, URLs and the ASGI application sit above every app: an app that
    imported them would draw an arrow back up (apps read settings through
    django.conf.settings)."""
    upward = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if name.split(".")[0] != "nexai"
        for target, _ in _imports(path)
        if target.split(".")[0] == "nexai"
    ]
    assert upward == []


def test_each_app_imports_only_the_apps_it_may() -> None:
    broken = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if (app := name.split(".")[0]) in ALLOWED
        for target, _ in _imports(path)
        if target.split(".")[0] not in ALLOWED[app]
    ]
    assert broken == []
