"""The package's import structure, read with `ast` (nothing is imported): no import cycles, counting imports
made inside functions and the package `__init__` modules an import runs, and no library module importing
the command-line layer (`zsbench.cli`, `zsbench.cli_args`, `zsbench.options`, `zsbench.choices`)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zsbench"
CLI_LAYER = {"zsbench.cli", "zsbench.cli_args", "zsbench.options", "zsbench.choices"}
# The stages the issue names; every other library module (bench/, demo/, the top-level modules) is held to the same.
LIBRARY_STAGES = ("models", "data", "runtime", "export", "backends", "eval", "report")
ENTRY_POINT = "zsbench.__main__"  # `python -m zsbench`: runs the command line


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its `__init__.py`)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(path: Path, module: str, is_package: bool) -> set[str]:
    """The dotted names a module imports when it runs, anywhere in it (functions included): `if TYPE_CHECKING:`
    blocks are left out (they never run). `from x import y` names `x.y` too (a submodule, if it is one)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package
                base_parts = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - node.level + 1]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules importing it runs: the module named and every package above it (its
    `__init__` runs first), except the importer's own packages, which are already running."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        edges = set()
        for name in imported_names(path, module, path.name == "__init__.py"):
            parts = name.split(".")
            for length in range(1, len(parts) + 1):
                target = ".".join(parts[:length])
                if target in modules and target != module and target not in own_packages:
                    edges.add(target)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def test_the_graph_sees_function_level_and_package_imports() -> None:
    graph = import_graph()
    # `zsbench.models.ref.ModelRef.load` imports the family registry inside the function.
    assert "zsbench.models.families" in graph["zsbench.models.ref"]
    # Importing zsbench.export.store runs zsbench/export/__init__.py first.
    assert "zsbench.export" in graph["zsbench.backends.artifacts"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (strongly connected modules):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_library_modules_do_not_import_the_command_line_layer() -> None:
    graph = import_graph()
    library = [module for module in graph if module not in CLI_LAYER and module != ENTRY_POINT]
    assert {module.split(".")[1] for module in library if module.count(".") > 1} >= set(LIBRARY_STAGES)
    offenders = {module: sorted(graph[module] & CLI_LAYER) for module in library if graph[module] & CLI_LAYER}
    assert not offenders, f"library modules importing the CLI layer: {offenders}"
