"""The layout's rules (README "Architecture"), read from the code's own imports.

Every import of a project module points down the layers below, the plant is reached only through the simulated
adapter, and no modules import each other in a circle. Imports under ``if TYPE_CHECKING:`` count: a type-only
arrow up is still an arrow up.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

#: Top-level package (or module) -> layer; a module may import only from its own layer or lower ones.
LAYERS = {
    "evse_model": 0, "evse_slac": 0, "exi_codec": 0,
    "sim_plant": 1,
    "evse_hal": 2,
    "ccs_sim": 3,
    "evse_secc": 4,
    "evse_main": 5,
    "evse_ev": 6,
}
#: The only modules that may import the simulated plant (besides the tools above the launcher).
PLANT_IMPORTERS = ("evse_hal.adapters.", "sim_plant", "evse_ev")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for path in SRC.rglob("*.py") if path.parts[-2] != "assets"}


def imported_modules(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The project modules ``name`` imports (``from a import b`` names ``a.b`` when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target in known:
                yield target


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: set(imported_modules(name, path, known)) - {name} for name, path in modules.items()}


def test_every_top_level_package_has_a_layer(graph: dict[str, set[str]]) -> None:
    assert {name.split(".")[0] for name in graph} <= set(LAYERS)


def test_every_import_points_down_the_layers(graph: dict[str, set[str]]) -> None:
    upward = [f"{importer} -> {imported}" for importer, imports in graph.items() for imported in imports
              if LAYERS[imported.split(".")[0]] > LAYERS[importer.split(".")[0]]]
    assert upward == []


def test_only_the_simulated_adapter_reaches_the_plant(graph: dict[str, set[str]]) -> None:
    reaching = [f"{importer} -> {imported}" for importer, imports in graph.items() for imported in imports
                if imported.split(".")[0] == "sim_plant" and not importer.startswith(PLANT_IMPORTERS)]
    assert reaching == []


def test_the_hal_contract_imports_only_the_vocabulary_below_it(graph: dict[str, set[str]]) -> None:
    assert {imported.split(".")[0] for imported in graph["evse_hal.interfaces"]} <= {"evse_hal", "evse_model"}
    assert {imported for imported in graph["evse_hal.interfaces"] if imported.startswith("evse_hal")} \
        <= {"evse_hal.pilot"}


def test_no_modules_import_each_other_in_a_circle(graph: dict[str, set[str]]) -> None:
    # Tarjan's strongly connected components; a package's __init__ importing its own modules is not a circle
    # of jobs, so arrows from a package to its own submodules are left out.
    edges = {name: {imported for imported in imports if not imported.startswith(name + ".")}
             for name, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges[node]):
            if successor not in index:
                visit(successor)
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
                circles.append(sorted(component))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    assert circles == []
