"""The layers of docs/ARCHITECTURE.md, held on the package's import graph.

Every `import` counts, also one inside a function (a lazy import is still a dependency), except
those under `if TYPE_CHECKING:`. Dependencies are followed transitively, so a rule cannot be
dodged through a helper module in between.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jupyter_cloudml"
MAX_LINES = 500

LOCAL = "jupyter_cloudml.backends.local"
KUBE = "jupyter_cloudml.backends.kubernetes"
#: Who may never reach a backend implementation: they speak to `Client` and the data model.
SPEAK_TO_CLIENT_ONLY = [
    "jupyter_cloudml.cli",
    "jupyter_cloudml.client",
    "jupyter_cloudml.commands",
    "jupyter_cloudml.magics",
    "jupyter_cloudml.server",
    "jupyter_cloudml.views",
    "jupyter_cloudml.widgets",
    "jupyter_cloudml.tuning",
    "jupyter_cloudml.metrics",
    "jupyter_cloudml.serving",
    "jupyter_cloudml.packaging",
    "jupyter_cloudml.models",
    "jupyter_cloudml.backends.base",
    "jupyter_cloudml.backends.common",
]
#: Who knows no screen.
NO_SCREEN = ["jupyter_cloudml.client", "jupyter_cloudml.models", "jupyter_cloudml.backends"]
SCREENS = ["magics", "server", "widgets", "views", "cli", "commands"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def in_group(module: str, group: str) -> bool:
    return module == group or module.startswith(group + ".")


@cache
def direct_imports(module: str) -> frozenset[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.dump(block.test)
        for node in ast.walk(block)
    }
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    # A submodule's own packages are not its dependencies (their __init__ may import it lazily).
    return frozenset(
        name
        for name in found
        if name in MODULES and name != module and not module.startswith(name + ".")
    )


#: Followed no further: the JupyterHub side (`cloudml hub ...`) is a tenant's cluster admin,
#: which uses the Kubernetes backend's builders on purpose, as a peer of the backends.
BOUNDARIES = ("jupyter_cloudml.hub",)


def reaches(module: str) -> dict[str, list[str]]:
    """Every module `module` depends on, with one import path leading there."""
    paths = {module: [module]}
    todo = [module]
    while todo:
        current = todo.pop()
        if current != module and any(in_group(current, b) for b in BOUNDARIES):
            continue
        for target in direct_imports(current):
            if target not in paths and target != "jupyter_cloudml":
                paths[target] = [*paths[current], target]
                todo.append(target)
    return paths


def sources(groups: list[str]) -> list[str]:
    return sorted(m for m in MODULES if any(in_group(m, g) for g in groups))


@pytest.mark.parametrize("module", sources(SPEAK_TO_CLIENT_ONLY))
def test_reaches_no_backend_implementation(module: str) -> None:
    bad = {
        target: path
        for target, path in reaches(module).items()
        if in_group(target, LOCAL) or in_group(target, KUBE)
    }
    assert not bad, "\n".join(" -> ".join(path) for path in bad.values())


@pytest.mark.parametrize(("mine", "sibling"), [(LOCAL, KUBE), (KUBE, LOCAL)])
def test_backends_are_siblings(mine: str, sibling: str) -> None:
    for module in sources([mine]):
        bad = [path for target, path in reaches(module).items() if in_group(target, sibling)]
        assert not bad, "\n".join(" -> ".join(path) for path in bad)


@pytest.mark.parametrize("module", sources(NO_SCREEN))
def test_the_core_and_the_backends_know_no_screen(module: str) -> None:
    screens = [f"jupyter_cloudml.{name}" for name in SCREENS]
    bad = [
        path
        for target, path in reaches(module).items()
        if any(in_group(target, screen) for screen in screens)
    ]
    assert not bad, "\n".join(" -> ".join(path) for path in bad)


def test_no_import_cycle() -> None:
    """No two modules depend on each other, directly or through others (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in direct_imports(node):
            if target == "jupyter_cloudml":
                continue  # the package's entry points import their parts lazily
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index and module != "jupyter_cloudml":
            visit(module)
    assert cycles == []


def test_no_module_over_the_size_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_rules_see_the_graph() -> None:
    """The checks above have something to hold: the graph has the edges they are about."""
    assert "jupyter_cloudml.client" in reaches("jupyter_cloudml.cli")
    assert "jupyter_cloudml.backends.base" in reaches("jupyter_cloudml.client")
    kube = reaches("jupyter_cloudml.hub.spawner")
    assert any(in_group(target, KUBE) for target in kube)  # the hub may use the cluster's code
