"""The README's two commands stay true: CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

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
