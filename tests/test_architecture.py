"""The shape of the package: a sans-IO core, adapters on top, no circles.

The core is everything outside the adapters (``consent.flask``,
``consent.asgi``) and the scanner (``consent.scan``): it must import with
every web framework blocked, as Flask's own ``sansio`` package does.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import consent

SOURCE = Path(consent.__file__).parent
ADAPTERS = ("consent.flask", "consent.asgi", "consent.scan")
FRAMEWORKS = ("flask", "werkzeug", "starlette", "fastapi", "quart", "django")

#: The longest a module may grow before it should be split by concept.
MAX_LINES = 700


def _modules() -> list[str]:
    names = ["consent"]
    for info in pkgutil.walk_packages([str(SOURCE)], prefix="consent."):
        names.append(info.name)
    return sorted(names)


MODULES = _modules()
CORE = [
    m
    for m in MODULES
    if not any(m == a or m.startswith(a + ".") for a in ADAPTERS)
    and m != "consent.__main__"
]


def _path(module: str) -> Path:
    parts = module.split(".")[1:]
    package = SOURCE.joinpath(*parts)
    if package.is_dir():
        return package / "__init__.py"
    return (
        SOURCE.joinpath(*parts[:-1], parts[-1] + ".py")
        if parts
        else SOURCE / ("__init__.py")
    )


def test_the_core_imports_with_every_web_framework_blocked() -> None:
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {FRAMEWORKS!r}:
            sys.modules[name] = None
        for module in {CORE!r}:
            importlib.import_module(module)
        leaked = sorted(
            name for name in sys.modules
            if name.split(".")[0] in {FRAMEWORKS!r} and sys.modules[name] is not None
        )
        print(len({CORE!r}), leaked)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{len(CORE)} []"
    assert "consent.visitor" in CORE and "consent.choice" in CORE


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING") or (
        isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import that runs, at any depth, outside ``if TYPE_CHECKING``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _edges(module: str) -> set[str]:
    """The consent modules ``module`` imports when it runs."""
    path = _path(module)
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = []
            for alias in node.names:
                candidate = f"{stem}.{alias.name}"
                names.append(candidate if candidate in MODULES else stem)
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("consent") and name != module:
                targets.add(name)
    return targets


def test_no_import_circle_anywhere() -> None:
    graph = {module: _edges(module) for module in MODULES}
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            # A module always imports its parent packages first: not a circle.
            if node.startswith(target + "."):
                continue
            if state.get(target) == 1:
                circles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in MODULES:
        if module not in state:
            visit(module)
    assert circles == []


@pytest.mark.parametrize("module", MODULES)
def test_no_module_is_too_long(module: str) -> None:
    lines = len(_path(module).read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by concept."
