"""The user-visible contract through `mlflow run` itself (MLproject + pipelines)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import experiment_ids

ROOT = Path(__file__).resolve().parents[2]


def _mlflow_run(args: list[str], uri: str) -> subprocess.CompletedProcess:
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PATH=bindir + os.pathsep + os.environ["PATH"])
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.run(
        [str(Path(bindir) / "mlflow"), "run", str(ROOT), *args, "--env-manager", "local"],
        # the store's directory: a new store's artifact root is ./mlruns of the working directory
        cwd=Path(uri.removeprefix("sqlite:///")).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    ("param", "message"),
    [
        pytest.param(
            "dataset=nope",
            "dataset must be one of digits, mnist, fashion, cifar10, "
            "gtsrb, intel, but got dataset='nope'",
            id="dataset",
        ),
        pytest.param("epochs=-1", "epochs must be at least 1, but got epochs=-1", id="epochs"),
        pytest.param("lr=abc", "lr must be a number, but got lr='abc'", id="lr"),
    ],
)
def test_bad_parameter_fails_the_mlflow_run_with_its_message(mlflow_store, param, message):
    proc = _mlflow_run(["-e", "train", "-P", param], mlflow_store)
    assert proc.returncode != 0
    assert f"error: {message}\n" in proc.stderr
    assert "Traceback" not in proc.stderr
    (run,) = MlflowClient().search_runs(experiment_ids(MlflowClient()))
    assert run.info.status == "FAILED"
    assert run.data.tags["robust.error"] == message


def test_train_then_reuse_through_mlflow_run(mlflow_store):
    first = _mlflow_run(["-e", "train", "-P", "epochs=2", "-P", "quiet=true"], mlflow_store)
    assert first.returncode == 0, first.stderr
    second = _mlflow_run(["-e", "train", "-P", "epochs=2", "-P", "quiet=true"], mlflow_store)
    assert second.returncode == 0, second.stderr
    assert "reusing FINISHED train run" in second.stderr
    runs = MlflowClient().search_runs(
        experiment_ids(MlflowClient()), order_by=["attributes.start_time ASC"]
    )
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert runs[1].data.tags["robust.reused_from"] == runs[0].info.run_id
    assert runs[0].data.metrics["test/accuracy"] > 0.5
    params = runs[0].data.params  # MLflow logged them as given; robust adds the resolution
    assert params["epochs"] == "2" and params["model"] == "auto"
    assert params["resolved.model"] == "digits_cnn" and params["resolved.lr"] == "0.001"


@pytest.mark.parametrize(
    "entry", ["main", "train", "attack", "metric", "retrain", "advtrain", "evaluate", "tune"]
)
def test_mlproject_passes_every_parameter_of_the_pipeline(entry):
    """Each entry point declares exactly its pipeline's Params, passes each one through, and
    defaults to what the pipeline does when the parameter is not given."""
    import dataclasses
    import importlib
    import typing

    import yaml

    from pipelines import _cli

    spec = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"][entry]
    params = importlib.import_module(f"pipelines.{entry}").Params
    hints = typing.get_type_hints(params)
    fields = {f.name: f.default for f in dataclasses.fields(params)}
    assert set(spec["parameters"]) == set(fields)
    assert spec["command"].startswith(f"python -m pipelines.{entry} ")
    for name, default in fields.items():
        assert f"--{name} {{{name}}}" in spec["command"]
        given = str(spec["parameters"][name]["default"])
        assert _cli._convert(name, given, hints[name]) == default, name
