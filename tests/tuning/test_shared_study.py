"""Several tune processes sharing one SQLite study (pipelines/tune.py, robust/tuning/_study.py):
together they complete total_trials, with distinct trial numbers and no error."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
from mlflow import MlflowClient

from pipelines import train
from robust import tuning

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_two_processes_share_one_study_without_duplicates(mlflow_store, tmp_path):
    root, model_run = tmp_path, train.main(train.Params(epochs=1, quiet=True))
    url = f"sqlite:///{root}/shared.db"
    cmd = [
        sys.executable, "-m", "pipelines.tune", "--model_run", model_run, "--storage", url,
        "--study", "shared", "--n_trials", "2", "--total_trials", "3", "--dgn_epochs", "1",
        "--quiet", "true",
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}  # two cores, two processes
    procs = [subprocess.Popen(cmd, cwd=root, env=env, stderr=subprocess.PIPE) for _ in range(2)]
    errs = [proc.communicate(timeout=120)[1].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errs
    study = optuna.load_study(study_name="shared", storage=url)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    numbers = [t.number for t in complete]
    assert len(complete) == 3 and len(set(numbers)) == 3
    assert complete[0].number == 0 and complete[0].user_attrs[tuning.DEFAULT_ATTR]
    # the two processes may both have queued the defaults: the second is pruned, untrained
    others = [t for t in study.trials if t.state != optuna.trial.TrialState.COMPLETE]
    assert all(t.user_attrs.get(tuning.DUPLICATE_ATTR) for t in others)
    assert all(t.state != optuna.trial.TrialState.FAIL for t in study.trials)
    runs = {t.user_attrs["mlflow_run_id"] for t in complete}
    assert len(runs) == 3
    parents = {MlflowClient().get_run(r).data.tags["mlflow.parentRunId"] for r in runs}
    assert len(parents) == 2  # each process's trials nest under its own tune run
