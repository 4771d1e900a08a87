"""The train stage end to end on digits (pipelines/train.py), in an isolated store."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipelines import train
from robust import data, results
from robust.evaluation import evaluate
from tests.conftest import experiment_ids

ROOT = Path(__file__).resolve().parents[2]


def _train(**kw) -> str:
    return train.main(train.Params(**{"epochs": 2, "quiet": True, **kw}))


def test_train_logs_the_contract_and_reloads(mlflow_store):
    run_id = _train()
    client = MlflowClient()
    r = client.get_run(run_id)
    assert r.info.status == "FINISHED"
    params, metrics = r.data.params, r.data.metrics
    assert params["dataset"] == "digits" and params["model"] == "digits_cnn"
    assert params["epochs"] == "2" and params["optimizer"] == "adam"  # auto resolved
    for key in (
        "time/total_s",
        "time/fit_s",
        "energy/total_kwh",
        "process/total_cpu_percent",
        "process/total_peak_rss_mb",
        "test/accuracy",
        "test/precision_macro",
        "test/recall_macro",
        "test/f1_macro",
        "train/samples_per_s",
    ):
        assert key in metrics, key
    for key in ("train/loss", "train/accuracy", "val/loss", "val/accuracy"):
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == [1, 2], key  # step = epoch, counted from 1
    arts = {a.path for a in client.list_artifacts(run_id)}
    assert {"model", "confusion"} <= arts
    assert {a.path for a in client.list_artifacts(run_id, "confusion")} == {
        "confusion/confusion.png",
        "confusion/confusion.csv",
    }
    # reload with weights-only loading: same test accuracy
    model = results.load_model(run_id)
    ds = data.load("digits", seed=0)
    assert evaluate(model, ds.test, ds.num_classes)["accuracy"] == pytest.approx(
        metrics["test/accuracy"]
    )
    assert r.data.tags["robust.stage"] == "train"


def test_second_identical_call_reuses_and_force_recomputes(mlflow_store, caplog):
    caplog.set_level("INFO", logger="robust")
    first = _train(epochs=1)
    again = _train(epochs=1)
    assert again == first
    assert f"reusing FINISHED train run {first}" in caplog.text
    forced = _train(epochs=1, force=True)
    assert forced != first
    m1 = MlflowClient().get_run(first).data.metrics["test/accuracy"]
    m2 = MlflowClient().get_run(forced).data.metrics["test/accuracy"]
    assert m1 == m2  # seeded: the recomputation gives the same numbers


def _cli(args: list[str], cwd: Path, uri: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.run(
        [sys.executable, "-m", "pipelines.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _failed_runs(uri: str):
    runs = MlflowClient(uri).search_runs(
        experiment_ids(MlflowClient(uri)), "attributes.status = 'FAILED'"
    )
    return [(r.data.tags.get("robust.error"), r.data.tags.get("robust.stage")) for r in runs]


def test_missing_data_files_exit_2_and_fail_the_run(mlflow_store, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = _cli(
        ["--dataset", "mnist", "--data_dir", str(tmp_path / "empty"), "--quiet", "true"],
        tmp_path,
        mlflow_store,
    )
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "train-images-idx3-ubyte.gz" in last
    assert "Traceback" not in proc.stderr
    ((error, stage),) = _failed_runs(mlflow_store)
    assert stage == "train" and "train-images-idx3-ubyte.gz" in error


def test_corrupt_idx_file_exits_2(mlflow_store, tmp_path):
    root = tmp_path / "d" / "mnist"
    root.mkdir(parents=True)
    for name in data.expected_files("mnist"):
        with gzip.open(root / name, "wb") as f:
            f.write(b"\x00\x00\x08\x99garbage")  # wrong magic number
    proc = _cli(
        ["--dataset", "mnist", "--data_dir", str(tmp_path / "d"), "--quiet", "true"],
        tmp_path,
        mlflow_store,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert len(_failed_runs(mlflow_store)) == 1


def test_bad_parameter_exits_2_before_any_run(mlflow_store, tmp_path):
    proc = _cli(["--lr", "abc"], tmp_path, mlflow_store)
    assert proc.returncode == 2
    assert proc.stderr == "error: lr must be a number, but got lr='abc'\n"
