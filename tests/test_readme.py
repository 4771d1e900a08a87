"""The README's two commands stay true: CI runs exactly the README's test command."""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_the_two_commands():
    main_cmd, test_cmd = _commands()
    assert main_cmd.startswith("python3 -m venv .venv") and "mlflow run . " in main_cmd
    assert "--env-manager local" in main_cmd
    assert "MLFLOW_TRACKING_URI=sqlite:///mlruns/mlflow.db" in main_cmd
    assert test_cmd.startswith("python3 -m venv .venv") and test_cmd.endswith("pytest -q")
    assert "pip install -q torch==2.13.0" in test_cmd  # torch first: no CUDA wheels


def test_ci_runs_the_readme_test_command():
    _, test_cmd = _commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci


def test_python_api_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.+?)\n```", section, re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["acts"].shape == (360, 64)
    assert (tmp_path / "my_model" / "model.safetensors").exists()


def test_dgn_custom_loss_example_runs(tmp_path, monkeypatch):
    from robust.attacks import dgn

    text = (ROOT / "README.md").read_text()
    section = text.split("## DGN generators", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.+?)\n```", section, re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        dgn.LOSSES.pop("flip", None)
    assert namespace["x_adv"].shape == (360, 1, 8, 8)
    assert (namespace["x_adv"] - namespace["ds"].test.x).abs().max() <= 0.3 + 1e-6
    assert (tmp_path / "my_generators" / "generators.safetensors").exists()


def _python_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    (code,) = re.findall(r"```python\n(.+?)\n```", section, re.S)
    return code


def _free_names(code: str) -> set[str]:
    """Names the code reads but never binds (what the reader must supply)."""
    tree = ast.parse(code)
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    } - bound


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """tests/study_store.py's small study (shared with tests/test_results.py)."""
    from tests import study_store
    from tests.conftest import isolated_store

    built = study_store.build(tmp_path_factory)
    with isolated_store(built.root):
        yield built


@pytest.mark.parametrize("ids", ["run ids", "reuse pointers"])
def test_querying_results_example_runs(study, capsys, ids):
    """The "Querying results" block, run as written with the four run ids it names (stage
    runs, or reuse pointers to them, which every function follows)."""
    import torch

    code = _python_block("## Querying results")
    given = {
        "train_run_id": study.train,
        "retrain_run_id": study.retrain,
        "evaluate_run_id": study.evaluate,
        "main_run_id": study.named,  # a main-like parent naming each stage in robust.child.*
    }
    if ids == "reuse pointers":
        given |= {f"{stage}_run_id": pointer for stage, pointer in study.pointers.items()}
    assert _free_names(code) == set(given)
    namespace = dict(given)
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    runs, cost = namespace["runs"], namespace["cost"]
    assert list(runs.run_id) == [study.attack] and study.attack in out
    assert "fgsm" in out and study.train in out  # params.method, upstream.model
    assert set(namespace["mean"].columns) == {"deepgini", "random"}
    assert namespace["mean"].notna().all().all()
    assert namespace["matrix"].attrs["run_id"] == study.evaluate
    totals = cost[cost.phase == "total"]
    assert list(totals.stage) == ["train", "attack", "metric", "retrain", "evaluate"]
    assert (totals.time_s > 0).all()
    assert isinstance(namespace["model"], torch.nn.Module)


def test_robustness_evaluation_example_runs(capsys):
    code = _python_block("## Robustness evaluation (library)")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert out.startswith("AutoAttack: ") and "PGD-20: " in out
    result = namespace["result"]
    assert result.robust_accuracy <= float(namespace["pgd_accuracy"])  # AA is the tighter bound
    assert out.count("\n") == 2 + 4  # the two numbers, then the four checks
    text = (ROOT / "README.md").read_text()
    low, high = namespace["low"], namespace["high"]
    claim = f"{result.robust_accuracy:.1%} [{low:.1%}, {high:.1%}]".replace("%", " %")
    assert claim in text  # the README quotes what the code prints
