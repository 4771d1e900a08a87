"""Importing robust is cheap: mlflow, codecarbon and pynvml load only when a stage runs, Ray
only when ``engine=ray`` is asked for.

torch itself imports pynvml when it is installed (torch/cuda/__init__.py), so the check is
what importing robust adds on top of ``import torch``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = """
import sys
import torch
before = set(sys.modules)
import robust, robust.data, robust.models, robust.training, robust.evaluation, robust.tracking
import robust.attacks, robust.engine, robust.retraining
added = set(sys.modules) - before
print(",".join(m for m in ("mlflow", "codecarbon", "pynvml", "ray") if m in added))
"""


def test_importing_robust_loads_no_tracking_libraries():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert out == ""


# ---- the dependency rules (DESIGN.md "Layout") ---------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = (
    "data", "models", "attacks", "guidance", "faults", "explain", "training", "retraining",
    "tuning", "evaluation",
)  # fmt: skip
"""Packages that know nothing of MLflow: they never import robust.tracking or mlflow."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside functions (lazy imports are
    dependencies too), ``from a import b`` counted as ``a.b`` when that is a module."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in sorted((ROOT / "robust").rglob("*.py"))}
    return {
        name: {m for m in _imports(path) if m in files} - {name} for name, path in files.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_import_cycles_between_modules():
    """A package's ``__init__`` re-exporting its own modules is not a cycle between concepts,
    so a module is checked against the modules it names, ``__init__`` files only as importers
    of their own package's modules."""
    graph = _graph()
    edges = {
        v: {w for w in ws if not (w == _package(w) and _package(v) == w)}
        for v, ws in graph.items()
    }
    assert _cycles(edges) == []


def test_no_import_cycles_between_packages():
    graph = _graph()
    packages: dict[str, set[str]] = {}
    for v, ws in graph.items():
        packages.setdefault(_package(v), set()).update(_package(w) for w in ws)
    assert _cycles({k: v - {k} for k, v in packages.items()}) == []


@pytest.mark.parametrize("package", ALGORITHMS)
def test_algorithm_packages_never_import_tracking_or_mlflow(package):
    bad = {}
    for path in sorted((ROOT / "robust" / package).rglob("*.py")):
        hits = sorted(
            m
            for m in _imports(path)
            if m.split(".")[0] == "mlflow"
            or m.startswith(("robust.tracking", "robust.results", "pipelines"))
        )
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    assert bad == {}


def test_the_checker_sees_a_cycle_and_a_lazy_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    lazy = ROOT / "robust" / "tracking" / "stage.py"  # imports robust.models inside a method
    assert "robust.models" in _imports(lazy)


def test_the_engine_depends_on_nothing_of_robust_but_its_errors():
    """robust.engine sits below the algorithm packages (retraining runs its grid on it), so it
    may import nothing above it."""
    graph = _graph()
    used = {w for v, ws in graph.items() if v.startswith("robust.engine") for w in ws}
    assert {_package(w) for w in used} - {"robust.engine"} == {"robust.errors"}


LOCAL_STAGE = """
import sys
from pipelines import retrain
from tests.pipelines.test_retrain import small_params
retrain.main(small_params())
print("ray" in sys.modules)
"""
