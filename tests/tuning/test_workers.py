"""Several ``tune`` workers on one PostgreSQL study (pipelines/tune.py, robust/tuning/_study.py,
robust/tuning/_optimize.py): together they finish exactly total_trials trials and never
propose the same parameters; a worker killed mid-trial leaves a trial that the heartbeat fails
and another worker retries with its params."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from pipelines import train
from robust import tuning
from tests.conftest import isolated_store

ROOT = Path(__file__).resolve().parents[2]
STATE = optuna.trial.TrialState
HEARTBEAT = {tuning.HEARTBEAT_ENV: "1", tuning.GRACE_ENV: "2"}
"""A heartbeat every second; a trial silent for 2 s is failed (default 60 s and 180 s)."""


@pytest.fixture(scope="module")
def model_store(tmp_path_factory):
    """An MLflow SQLite store holding one FINISHED 1-epoch train run: (its file, the run id)."""
    root = tmp_path_factory.mktemp("model")
    with isolated_store(root):
        return root / "mlflow.db", train.main(train.Params(epochs=1, quiet=True))


def _start(model_store, root: Path, storage: str, *args: str) -> subprocess.Popen:
    """A ``python -m pipelines.tune`` worker with its own copy of the MLflow store (SQLite is
    one machine's store; the study is what the workers share)."""
    db, model_run = model_store
    root.mkdir()
    shutil.copy(db, root / "mlflow.db")
    env = (
        os.environ
        | HEARTBEAT
        | {
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",  # two cores, several processes
            "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        }
    )
    env.pop("MLFLOW_RUN_ID", None)
    cmd = [
        sys.executable, "-m", "pipelines.tune", "--model_run", model_run, "--storage", storage,
        "--study", "shared", "--quiet", "true", *args,
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=root, env=env, stderr=subprocess.PIPE, text=True)


def _finished(study) -> list:
    return [
        t
        for t in study.get_trials()
        if t.state in (STATE.COMPLETE, STATE.PRUNED)
        and not t.user_attrs.get("robust.over_budget")
        and not t.user_attrs.get(tuning.DUPLICATE_ATTR)  # a raced second default trial
    ]


@pytest.mark.parametrize(
    ("n_workers", "total", "n_trials", "workers"),
    [
        pytest.param(2, 4, 2, None, id="2-auto"),  # the same seed, as seen by hand
        pytest.param(4, 6, 2, range(4), id="4"),  # 8 trials offered for 6
    ],
)
def test_concurrent_workers(
    model_store, optuna_storage, tmp_path, n_workers, total, n_trials, workers
):
    """They finish exactly ``total`` trials, no two with the same params."""
    common = ["--total_trials", str(total), "--n_trials", str(n_trials), "--dgn_epochs", "1"]
    index = [["--worker", str(w)] for w in workers] if workers else [[]] * n_workers
    procs = [
        _start(model_store, tmp_path / f"w{i}", optuna_storage, *common, *index[i])
        for i in range(n_workers)
    ]
    errs = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * n_workers, errs
    study = optuna.load_study(study_name="shared", storage=optuna_storage)
    finished = _finished(study)
    assert len(finished) == total
    assert {t.state for t in study.get_trials()} <= {STATE.COMPLETE, STATE.PRUNED}
    params = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(params)) == len(params) == total  # no two workers proposed the same trial
    seen = {t.user_attrs["robust.worker"] for t in finished}
    if workers is None:  # 2 × 2 trials for 4: both workers ran, each with its own index
        assert len(seen) == 2
    else:
        assert seen <= set(workers)


def test_killed_worker(model_store, optuna_storage, tmp_path):
    """A worker killed mid-trial leaves a trial that turns FAIL; another worker retries it with
    its params and the two trials budgeted finish."""
    study = tuning.open_study(optuna_storage, "shared", "multi")  # created before the workers
    common = ["--total_trials", "2", "--n_trials", "3"]
    common += ["--dgn_epochs", "20"]  # one schedule per study; a trial lasts a few seconds
    doomed = _start(model_store, tmp_path / "w0", optuna_storage, *common, "--worker", "0")
    deadline = time.monotonic() + 120
    running = []
    while not running:  # a trial of that worker is training (its params are drawn)
        assert doomed.poll() is None, doomed.communicate()[1]
        assert time.monotonic() < deadline, "no trial started within 120 s"
        running = [t for t in study.get_trials(states=(STATE.RUNNING,)) if t.params]
        time.sleep(0.2)
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate(timeout=60)
    (killed,) = running
    survivor = _start(model_store, tmp_path / "w1", optuna_storage, *common, "--worker", "1")
    err = survivor.communicate(timeout=300)[1]
    assert survivor.returncode == 0, err
    trials = study.get_trials()
    assert trials[killed.number].state == STATE.FAIL  # the heartbeat stopped: failed
    finished = _finished(study)
    assert len(finished) == 2
    (retry,) = [t for t in finished if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.params == killed.params and retry.user_attrs["robust.worker"] == 1
    assert [t for t in trials if t.state in (STATE.RUNNING, STATE.WAITING)] == []
