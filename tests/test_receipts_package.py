"""The receipts package: its layout, its imports, and where it imports."""

from __future__ import annotations

import ast
from pathlib import Path

import consent
from tests.isolated import run_isolated

SRC = Path(consent.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING") or (
        isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.ImportFrom]:
    """Relative imports that run: at module level or in a function, but not
    under ``if TYPE_CHECKING:``."""
    found: list[ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.ImportFrom) and child.level:
                found.append(child)
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Which modules of ``consent`` each module imports (``from . import x``
    and ``from .x import y`` edges)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, *([node.module] if node.module else [])])
            names = [alias.name for alias in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            graph[name].update(submodules)
            # Names that are not submodules come from the package itself.
            if target in modules and len(submodules) < len(names):
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each as the path that closes it."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    return found


def test_the_graph_sees_the_package_edges() -> None:
    graph = import_graph()
    assert "consent.receipts.store" in graph["consent.receipts.sqlite"]
    assert "consent.receipts.record" in graph["consent.receipts.store"]
    assert "consent.exceptions" in graph["consent.receipts.keeper"]
    assert "consent.receipts.keeper" in graph["consent.receipts"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_circle_touches_the_receipts() -> None:
    found = [
        cycle
        for cycle in cycles(import_graph())
        if any(m.startswith("consent.receipts") for m in cycle)
    ]
    assert found == []


def test_no_receipts_module_is_long() -> None:
    for path in (SRC / "receipts").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 700, path.name


def test_the_receipts_import_without_fcntl() -> None:
    # As on Windows: locking is imported where a spool is locked.
    result = run_isolated(
        """
        import consent.receipts
        from consent.receipts import DurableRecorder, ReceiptKeeper, open_store
        from consent.receipts import commands, spool, sqlite, sql, keeper
        print("imported")
        """,
        blocked=("fcntl",),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "imported\n"


def test_the_receipts_import_without_any_web_framework() -> None:
    result = run_isolated(
        """
        import pkgutil, importlib
        import consent.receipts
        for module in pkgutil.iter_modules(consent.receipts.__path__):
            importlib.import_module("consent.receipts." + module.name)
        import sys
        loaded = [m for m in ("flask", "werkzeug", "starlette") if sys.modules.get(m)]
        print("loaded:", loaded)
        """,
        blocked=("flask", "werkzeug", "starlette"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "loaded: []\n"


def test_the_store_code_loads_on_first_use() -> None:
    # An app that keeps no receipts does not pay for sqlite3 or SQLAlchemy.
    result = run_isolated(
        """
        import sys
        import consent.receipts
        heavy = ("sqlite3", "sqlalchemy", "psycopg")
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
