"""What survives a killed process: SIGTERM ends the stage KILLED with exit 143; a process killed
without a word (SIGKILL) leaves a run whose stale heartbeat the next stage marks FAILED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from robust import results
from robust.tracking import heartbeat, lineage, stage
from tests.conftest import experiment_ids

ROOT = Path(__file__).resolve().parents[2]


def _start_train(tmp_path: Path, uri: str) -> subprocess.Popen:
    """A train stage long enough to be killed mid-fit, beating every second. The store's
    tables are created here first: were the stage creating them while this process polls the
    new file, both would create the same tables (MLflow's migrations run one by one) and one
    would fail with "table ... already exists"."""
    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    env = {
        **os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT),
        heartbeat.ENV: "1",
    }  # fmt: skip
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.train", "--epochs", "500", "--quiet", "true"],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _running_run(uri: str, process: subprocess.Popen, timeout: float = 120) -> str:
    """The id of the train run once it is RUNNING and has beaten (the fit has started)."""
    client = MlflowClient(tracking_uri=uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-2000:]
        if os.path.exists(uri.removeprefix("sqlite:///")):
            for r in client.search_runs(experiment_ids(client), "attributes.status = 'RUNNING'"):
                if "time/load_s" in r.data.metrics:  # the load phase is over: fitting now
                    return r.info.run_id
        time.sleep(0.5)
    raise AssertionError("the train stage never started fitting")


def test_sigterm_ends_the_stage_killed_with_exit_143_and_one_line(mlflow_store, tmp_path):
    process = _start_train(tmp_path, mlflow_store)
    run_id = _running_run(mlflow_store, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143
    assert err.strip().splitlines()[-1] == "terminated" and "Traceback" not in err
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["robust.error"] == "terminated"


def _is_worker(process) -> bool:
    """A multiprocessing worker (not the resource tracker, not a short-lived git call)."""
    import psutil

    try:
        return "spawn_main" in " ".join(process.cmdline())
    except psutil.Error:  # gone, or a zombie, meanwhile
        return False


def test_sigterm_stops_retrain_workers_cleanly(mlflow_store, tmp_path):
    """Retrain fits in worker processes: SIGTERM stops them with the stage, without a
    traceback per worker or a semaphore left to the resource tracker."""
    import psutil

    from pipelines import attack, metric, train

    train.main(train.Params(epochs=1, quiet=True))
    attack.main(attack.Params(method="fgsm", quiet=True))
    metric.main(metric.Params(metrics=("random",), quiet=True))
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_RUN_ID", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.retrain", "--workers", "2", "--quiet", "true",
         "--metrics", "random"],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    client = MlflowClient(tracking_uri=mlflow_store)
    deadline = time.monotonic() + 180
    workers: list[psutil.Process] = []
    while len(workers) < 2:  # both workers are up (the resource tracker is a child too)
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        workers = [
            k for k in psutil.Process(process.pid).children(recursive=True) if _is_worker(k)
        ]
        time.sleep(0.5)
    time.sleep(3)  # fitting now
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == "terminated"
    assert "Traceback" not in err and "leaked" not in err
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    (run,) = client.search_runs(experiment_ids(client), "tags.`robust.stage` = 'retrain'")
    assert run.info.status == "KILLED" and run.data.tags["robust.error"] == "terminated"


def test_a_killed_process_leaves_a_run_the_next_stage_marks_lost(mlflow_store, tmp_path):
    process = _start_train(tmp_path, mlflow_store)
    run_id = _running_run(mlflow_store, process)
    process.kill()  # SIGKILL: no handler runs, the run stays RUNNING in the store
    process.communicate(timeout=60)
    assert MlflowClient().get_run(run_id).info.status == "RUNNING"
    time.sleep(heartbeat.STALE_AFTER * 1 + 1.5)  # the run beat every second
    with stage("other", {"x": 1}, dataset="digits", force=True):
        pass
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["robust.error"] == "lost heartbeat"
    row = results.runs(stage="train", status=None).set_index("run_id").loc[run_id]
    assert row.status == "FAILED" and row.error == "lost heartbeat"


def test_results_and_lineage_mark_a_lost_run_they_meet(mlflow_store):
    """No stage needs to start: a query that meets the dead run marks it."""
    client = MlflowClient()
    run = client.create_run("0", tags={"robust.stage": "train"})
    beat = heartbeat.Heartbeat(client, run.info.run_id, interval=1.0).start()
    beat.stop()  # the "process" dies: no more beats
    assert not heartbeat.is_lost(client.get_run(run.info.run_id))
    time.sleep(heartbeat.STALE_AFTER * 1.0 + 0.5)
    df = results.runs(stage="train", status=None)
    assert df.set_index("run_id").loc[run.info.run_id, "error"] == "lost heartbeat"
    lineage.forget()
    assert lineage.fetch(run.info.run_id).info.status == "FAILED"


def test_a_bad_heartbeat_setting_is_one_line(monkeypatch):
    from robust.errors import ConfigError

    monkeypatch.setenv(heartbeat.ENV, "soon")
    with pytest.raises(ConfigError, match=r"^ROBUST_HEARTBEAT_S must be a positive number"):
        heartbeat.interval_s()
