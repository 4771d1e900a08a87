"""Run look-ups of robust/tracking/store.py."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from robust.errors import ConfigError
from robust.tracking import (
    DEFAULT_TRACKING_URI,
    fail_adopted_run,
    get_run,
    latest_run,
    params_of,
    stage,
)
from robust.tracking.store import tracking_uri


def test_default_uri_and_overrides(monkeypatch):
    from mlflow.tracking._tracking_service import utils

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(utils, "_tracking_uri", None)
    assert tracking_uri() == DEFAULT_TRACKING_URI == "sqlite:///mlruns/mlflow.db"
    mlflow.set_tracking_uri("sqlite:///set-in-python.db")
    assert tracking_uri() == "sqlite:///set-in-python.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    assert tracking_uri() == "sqlite:///x.db"


def test_latest_run_and_get_run_checks(mlflow_store):
    with pytest.raises(ConfigError, match="no FINISHED train run on dataset 'digits'"):
        latest_run("train", "digits")
    with stage("train", {"a": 1}, dataset="digits") as old:
        pass
    with stage("train", {"a": 2}, dataset="digits") as new:
        pass
    assert latest_run("train", "digits") == new.run_id != old.run_id
    assert get_run(new.run_id, stage="train").info.run_id == new.run_id
    with pytest.raises(ConfigError, match="is a 'train' run, but a 'attack' run is required"):
        get_run(new.run_id, stage="attack")
    with pytest.raises(ConfigError, match="no run with id 'nope'"):
        get_run("nope")


def test_fail_adopted_run(mlflow_store, monkeypatch):
    pending = MlflowClient().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", pending.info.run_id)
    fail_adopted_run("dataset must be one of digits, but got dataset='nope'")
    r = MlflowClient().get_run(pending.info.run_id)
    assert r.info.status == "FAILED"
    assert r.data.tags["robust.error"].startswith("dataset must be one of")
    with pytest.raises(ConfigError, match="is FAILED; only FINISHED runs can be used"):
        get_run(pending.info.run_id)


def test_params_of_prefers_what_the_stage_resolved_under_mlflow_run(mlflow_store, monkeypatch):
    """`mlflow run` logs the user's -P values (``auto``) before the stage adopts its run; the
    stage then logs the values it used as ``resolved.<key>``, which downstream stages read."""
    pending = MlflowClient().create_run("0")
    MlflowClient().log_param(pending.info.run_id, "metrics", "all")
    monkeypatch.setenv("MLFLOW_RUN_ID", pending.info.run_id)
    with stage("metric", {"metrics": "nc,lsa", "seed": 0}, dataset="digits") as run:
        pass
    raw = get_run(run.run_id).data.params
    assert raw["metrics"] == "all" and raw["resolved.metrics"] == "nc,lsa"
    assert params_of(get_run(run.run_id)) == {"metrics": "nc,lsa", "seed": "0"}
