"""Run look-ups of robust/tracking/lineage.py and reuse by key in robust/tracking/cache.py."""

from __future__ import annotations

from collections import Counter

import mlflow
import pytest
from mlflow import MlflowClient

from robust.errors import ConfigError, DataError
from robust.tracking import (
    DEFAULT_TRACKING_URI,
    Lineage,
    cache,
    fail_adopted_run,
    lineage,
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


def test_latest_run_and_checks(mlflow_store):
    up = Lineage("digits")
    with pytest.raises(ConfigError, match="no FINISHED train run on dataset 'digits'"):
        up.latest("train")
    with stage("train", {"a": 1, "dataset": "digits"}, dataset="digits") as old:
        pass
    with stage("train", {"a": 2, "dataset": "digits"}, dataset="digits") as new:
        pass
    assert up.latest("train") == up.model_run(None) == new.run_id != old.run_id
    assert up.find("train") == [old.run_id, new.run_id]
    assert up.run(new.run_id, "train").info.run_id == new.run_id
    with pytest.raises(ConfigError, match="is a 'train' run, but a 'attack' run is required"):
        up.run(new.run_id, "attack")
    with pytest.raises(ConfigError, match="no run with id 'nope'"):
        up.run("nope")
    with pytest.raises(ConfigError, match=r"model_run \w+ was trained on dataset 'digits', not"):
        Lineage("mnist").model_run(new.run_id)


def test_fail_adopted_run(mlflow_store, monkeypatch):
    pending = MlflowClient().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", pending.info.run_id)
    fail_adopted_run("dataset must be one of digits, but got dataset='nope'")
    r = MlflowClient().get_run(pending.info.run_id)
    assert r.info.status == "FAILED"
    assert r.data.tags["robust.error"].startswith("dataset must be one of")
    with pytest.raises(ConfigError, match="is FAILED; only FINISHED runs can be used"):
        Lineage().run(pending.info.run_id)


def test_params_of_prefers_what_the_stage_resolved_under_mlflow_run(mlflow_store, monkeypatch):
    """`mlflow run` logs the user's -P values (``auto``) before the stage adopts its run; the
    stage then logs the values it used as ``resolved.<key>``, which downstream stages read."""
    pending = MlflowClient().create_run("0")
    MlflowClient().log_param(pending.info.run_id, "metrics", "all")
    monkeypatch.setenv("MLFLOW_RUN_ID", pending.info.run_id)
    with stage("metric", {"metrics": "nc,lsa", "seed": 0}, dataset="digits") as run:
        pass
    raw = MlflowClient().get_run(run.run_id).data.params
    assert raw["metrics"] == "all" and raw["resolved.metrics"] == "nc,lsa"
    assert params_of(lineage.fetch(run.run_id)) == {"metrics": "nc,lsa", "seed": "0"}
    assert Lineage().params(run.run_id) == {"metrics": "nc,lsa", "seed": "0"}


def test_an_ended_run_is_fetched_once_per_process(mlflow_store, monkeypatch):
    with stage("train", {"a": 1}, dataset="digits") as run:
        pass
    lineage.forget()
    calls = Counter()
    real = MlflowClient.get_run
    monkeypatch.setattr(
        MlflowClient, "get_run", lambda self, i: calls.update([i]) or real(self, i)
    )
    for _ in range(3):
        Lineage("digits").run(run.run_id, "train")
        lineage.fetch(run.run_id)
    assert calls[run.run_id] == 1


def test_missing_artifact_is_one_line_naming_run_and_path(mlflow_store):
    with stage("train", {"a": 1}, dataset="digits") as run:
        pass
    with pytest.raises(DataError, match=f"run {run.run_id} has no readable artifact 'x/y.bin'"):
        Lineage().artifact(run.run_id, "x/y.bin")


def test_reuse_finds_its_key_however_many_runs_came_after(mlflow_store, caplog):
    """The key is searched by its tag, with no cap on history: 60 newer runs of the same stage
    (more than the 50 the old look-up scanned) do not hide the matching one."""
    params = {"epochs": 3, "dataset": "digits"}
    with stage("train", params, dataset="digits") as first:
        pass
    client = MlflowClient()
    experiment = client.get_run(first.run_id).info.experiment_id
    for i in range(60):
        r = client.create_run(experiment, tags={"robust.stage": "train", cache.KEY_TAG: f"k{i}"})
        client.set_terminated(r.info.run_id, "FINISHED")
    caplog.set_level("INFO", logger="robust")
    with stage("train", params, dataset="digits") as again:
        assert again.reused and again.run_id == first.run_id
