"""The package imports in one direction, lowest layer first, with no circle.

Read from every ``cnn_lab`` module's own imports (``ast``: imports inside functions count
too), so a lazy import cannot hide a back-reference.
"""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnn_lab"

# The allowed order, lowest first: a module may import only from a layer below its own
# (a package's own modules may also import each other). Each line names top-level modules
# or packages of cnn_lab; this list is the one place the order is written down.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("study", "models", "runcheck", "syncbn"),  # no cnn_lab imports
    ("config",),        # the typed settings
    ("data",),          # CIFAR-10 located, decoded, cached, subset
    ("batches",),       # epoch order, batches gathered, augmented, normalised
    ("runio",),         # the run files
    ("distributed",),   # torchrun ranks
    ("rundir",),        # who may write a run directory
    ("precision",),     # the numeric mode: autocast, channels_last, the fp32 head
    ("step",),          # one optimizer step
    ("autotune",),      # times steps to choose a mode
    ("train",),         # the loop
    ("cost",),          # MACs, memory, stage costs
    ("variant",),       # a variant's resolved config, budgets from the model's family
    ("bench",),
    ("report",),
    ("export",),
    ("live",),          # the training cell's live view in a notebook frontend
    ("publish",),
    ("pipeline",),
    ("notebook",),
    ("cli",),
    ("__main__",),
)
RANK = {unit: i for i, line in enumerate(LAYERS) for unit in line}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The cnn_lab modules ``path`` imports anywhere in its body."""
    name = module_name(path)
    package = name if is_package(path) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "cnn_lab")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "cnn_lab":
                target = node.module
            else:
                continue
            subs = {f"{target}.{a.name}" for a in node.names} & known  # `from . import runio`
            found.update(subs or {target})
    return (found & known) - {name}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(f) for f in files}
    return {module_name(f): imported_modules(f, known) for f in files}


def unit(module: str) -> str:
    """The top-level module or package of cnn_lab that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def back_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import that runs sideways or up the layers, as one line."""
    out = []
    for mod, deps in sorted(graph.items()):
        for dep in sorted(deps):
            a, b = unit(mod), unit(dep)
            if a == b or not a:
                continue
            if RANK[b] >= RANK[a]:
                out.append(f"{mod} imports {dep}: layer {RANK[a]} ({a}) may use only layers below it, "
                           f"and {b} is layer {RANK[b]}")
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        return err.args[1]
    return None


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_module_has_a_layer(graph):
    units = {unit(m) for m in graph} - {""}
    assert units - set(RANK) == set(), "add these to LAYERS"
    assert set(RANK) - units == set(), "LAYERS names modules that no longer exist"


def test_the_package_imports_have_no_circle(graph):
    assert find_cycle(graph) is None


def test_every_import_runs_down_the_layers(graph):
    assert back_imports(graph) == []


def test_the_reader_sees_imports_inside_functions_and_relative_forms(graph):
    # bench imports cost inside a function; autotune `from . import runio`; report modules `from ..data import`
    assert "cnn_lab.runio" in graph["cnn_lab.autotune"]
    assert "cnn_lab.data" in graph["cnn_lab.report.labels"]
    assert "cnn_lab.variant" in graph["cnn_lab.report.labels"]  # imported inside a function


def test_a_back_import_is_caught(graph):
    """The old circle, config -> cost -> ... -> config, fails both checks."""
    bad = {**graph, "cnn_lab.config": graph["cnn_lab.config"] | {"cnn_lab.cost"}}
    assert any(line.startswith("cnn_lab.config imports cnn_lab.cost") for line in back_imports(bad))
    assert find_cycle(bad) is not None
