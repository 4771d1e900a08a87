"""The stage run contract of robust/tracking/stage.py (DESIGN.md, "The stage run")."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from robust import data
from robust.errors import ConfigError
from robust.tracking import cache, fetch, notes, stage

PARAMS = {"dataset": "digits", "epochs": 3, "lr": 1e-3, "force": False}


def _busy(cpu_s: float = 0.2) -> None:
    """Compute until this thread has used ``cpu_s`` CPU seconds, however loaded the machine
    (the wall time this takes is at least ``cpu_s``, and unbounded)."""
    start = time.thread_time()
    while time.thread_time() - start < cpu_s:
        sum(i * i for i in range(10_000))


def test_finished_run_logs_params_tags_and_costs(mlflow_store):
    with stage("train", PARAMS, dataset="digits", upstream={"model": "abc"}) as run:
        with run.phase("fit"):
            _busy()
        for step in range(5):
            run.log_metrics({"train/loss": 1.0 / (step + 1)}, step=step)
    r = MlflowClient().get_run(run.run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params["epochs"] == "3" and r.data.params["lr"] == "0.001"
    tags = r.data.tags
    assert tags["robust.stage"] == "train" and tags["robust.dataset"] == "digits"
    assert tags["robust.upstream.model"] == "abc"
    assert tags["robust.code_version"].startswith("src-")
    assert "cpu=" in tags["robust.energy.method"]
    m = r.data.metrics
    for key in (
        "time/total_s",
        "time/fit_s",
        "energy/total_kwh",
        "energy/fit_kwh",
        "emissions/total_kg",
        "process/total_cpu_percent",
        "process/total_peak_rss_mb",
        "process/fit_cpu_percent",
        "process/fit_peak_rss_mb",
    ):
        assert key in m, key
    assert all(math.isfinite(m[key]) for key in m), m
    # what is guaranteed on any machine, however loaded: the phase did 0.2 s of CPU work
    assert m["time/total_s"] >= m["time/fit_s"] >= 0.2
    assert m["energy/total_kwh"] >= m["energy/fit_kwh"] > 0
    fit_cpu_s = m["process/fit_cpu_percent"] / 100 * m["time/fit_s"]
    # psutil counts 10 ms clock ticks, and the CPU time of a child reaped meanwhile: slack
    assert 0.15 <= fit_cpu_s <= m["time/fit_s"] * os.cpu_count() + 0.5
    assert m["process/total_peak_rss_mb"] >= m["process/fit_peak_rss_mb"] > 0
    history = MlflowClient().get_metric_history(run.run_id, "train/loss")
    assert [h.step for h in sorted(history, key=lambda h: h.step)] == [0, 1, 2, 3, 4]


def test_peak_rss_sees_a_large_allocation(mlflow_store):
    """The process held a 200 MiB block (every page written) inside the phase, so that
    phase's peak RSS is at least 200 MiB, whatever else the machine runs; the block lives
    until the phase has ended, so even sampling (where the kernel's peak is missing) sees it."""
    with stage("probe", {"n": 1}) as run:
        with run.phase("big"):
            block = np.ones(200 * 2**20 // 8)  # 200 MiB, all touched
        assert block.sum() == len(block)
        del block
        with run.phase("transient"):  # freed before the phase ends: only the kernel's peak
            np.ones(200 * 2**20 // 8)
    m = MlflowClient().get_run(run.run_id).data.metrics
    assert m["process/total_peak_rss_mb"] >= m["process/big_peak_rss_mb"] >= 200
    status = Path("/proc/self/status")  # Linux: the peak is the kernel's high-water mark
    if status.exists() and "VmHWM:" in status.read_text():
        assert m["process/transient_peak_rss_mb"] >= 200


def test_error_marks_run_failed_with_one_line_tag(mlflow_store):
    with (
        pytest.raises(ConfigError, match="epochs must be at least 1"),
        stage("train", PARAMS, dataset="digits") as run,
    ):
        raise ConfigError("epochs must be at least 1,\n but got epochs=-1")
    r = MlflowClient().get_run(run.run_id)
    assert r.info.status == "FAILED"
    assert r.data.tags["robust.error"] == "epochs must be at least 1, but got epochs=-1"
    assert "time/total_s" in r.data.metrics  # costs are logged even for a failed run


def test_identical_finished_stage_is_reused_and_force_recomputes(mlflow_store, caplog):
    with stage("train", PARAMS, dataset="digits") as first:
        assert not first.reused
    caplog.set_level("INFO", logger="robust")
    with stage("train", dict(PARAMS, lr=0.001, force=False), dataset="digits") as again:
        assert again.reused and again.run_id == first.run_id
    assert f"reusing FINISHED train run {first.run_id}" in caplog.text
    with stage("train", PARAMS, dataset="digits", force=True) as forced:
        assert not forced.reused and forced.run_id != first.run_id


def test_changed_params_upstream_or_code_are_not_reused(mlflow_store, monkeypatch, caplog):
    caplog.set_level("INFO", logger="robust")
    with stage("train", PARAMS) as first:
        pass
    with stage("train", dict(PARAMS, epochs=4)) as other:
        assert not other.reused
    assert f"not reusing {first.run_id}: epochs=3 (now 4)" in caplog.text
    with stage("train", PARAMS, upstream={"model": "x"}) as up:
        assert not up.reused
    monkeypatch.setattr(cache, "code_version", lambda: "src-changed")
    with stage("train", PARAMS) as changed:
        assert not changed.reused


def test_params_are_logged_as_used_and_the_key_keeps_them_as_given(mlflow_store):
    """``device=auto`` is logged as the device used, ``experiment=auto`` as its name and an
    auto ``data_dir`` not at all (``data_path`` is the directory read); a stage given the
    same ``auto`` values is still reused, whatever device resolves to."""
    import torch

    given = dict(PARAMS, device="auto", experiment=None, data_dir=None)
    with stage("train", given, dataset="digits", data=("digits", None)) as first:
        pass
    params = MlflowClient().get_run(first.run_id).data.params
    assert params["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert params["experiment"] == "robust-digits"
    assert "data_dir" not in params and params["data_path"] == "bundled"
    with stage("train", given, dataset="digits", data=("digits", None)) as again:
        assert again.reused and again.run_id == first.run_id


def test_failed_run_is_never_reused(mlflow_store):
    with pytest.raises(RuntimeError), stage("train", PARAMS) as failed:
        raise RuntimeError("boom")
    with stage("train", PARAMS) as again:
        assert not again.reused and again.run_id != failed.run_id
    tags = MlflowClient().get_run(failed.run_id).data.tags
    assert tags["robust.error"] == "RuntimeError: boom"


def test_adopted_mlflow_run_becomes_a_pointer_when_reusing(mlflow_store, monkeypatch):
    with stage("train", PARAMS) as first:
        pass
    client = MlflowClient()
    pending = client.create_run("0")  # what `mlflow run` does before starting our process
    monkeypatch.setenv("MLFLOW_RUN_ID", pending.info.run_id)
    with stage("train", PARAMS) as again:
        assert again.reused and again.run_id == first.run_id
    pointer = client.get_run(pending.info.run_id)
    assert pointer.info.status == "FINISHED"
    assert pointer.data.tags["robust.reused_from"] == first.run_id
    assert fetch(pending.info.run_id).info.run_id == first.run_id


def test_adopted_mlflow_run_is_used_for_new_work(mlflow_store, monkeypatch):
    pending = MlflowClient().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", pending.info.run_id)
    with stage("train", PARAMS) as run:
        assert run.run_id == pending.info.run_id


def test_stage_inside_stage_is_a_child_run(mlflow_store):
    with stage("main", {"x": 1}, force=True) as parent, stage("train", PARAMS) as child:
        assert child.run_id != parent.run_id
    tags = MlflowClient().get_run(child.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.run_id


def test_phases_do_not_nest(mlflow_store):
    with (
        pytest.raises(RuntimeError, match="phases do not nest"),
        stage("t", {}) as run,
        run.phase("a"),
        run.phase("b"),
    ):
        pass


def test_many_metrics_are_sent_in_batches(mlflow_store):
    with stage("t", {}) as run:
        for step in range(2500):
            run.log_metrics({"m/x": step}, step=step)
    assert len(MlflowClient().get_metric_history(run.run_id, "m/x")) == 2500


def test_tensors_round_trip_without_pickle(mlflow_store):
    import torch

    from robust.tracking import Lineage

    x = torch.rand(3, 1, 8, 8)
    with stage("t", {}) as run:
        run.log_tensors("adversarial/test", x=x, y=torch.arange(3))
    loaded = Lineage().tensors(run.run_id, "adversarial/test.safetensors")
    assert torch.equal(loaded["x"], x) and loaded["y"].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(1e-3, "0.001", id="float"),
        pytest.param(0.001, "0.001", id="same-float"),
        pytest.param(3.0, "3", id="integral-float"),
        pytest.param(True, "true", id="bool"),
        pytest.param(None, "auto", id="none"),
        pytest.param(("a", "b"), "a,b", id="tuple"),
    ],
)
def test_canonical_strings(value, text):
    assert cache.canonical(value) == text


def test_cache_key_ignores_force_and_quiet_but_not_params():
    a = cache.cache_key("train", {"lr": 0.001, "force": True, "quiet": True}, {})
    b = cache.cache_key("train", {"lr": 1e-3, "force": False}, {})
    c = cache.cache_key("train", {"lr": 1e-2}, {})
    assert a == b != c
    assert cache.cache_key("train", {"lr": 0.001}, {"m": "1"}) != b


def test_a_stage_goes_to_its_datasets_experiment_tagged_as_model_training(mlflow_store):
    with stage("train", PARAMS, dataset="digits", run_name="train digits_cnn") as run:
        pass
    client = MlflowClient()
    r = client.get_run(run.run_id)
    exp = client.get_experiment(r.info.experiment_id)
    assert exp.name == "robust-digits" and r.info.run_name == "train digits_cnn"
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    with stage("train", PARAMS, dataset="digits") as again:  # found again there: reused
        assert again.reused and again.run_id == run.run_id
    with stage("train", PARAMS, dataset="digits", experiment="mine", force=True) as other:
        pass
    assert client.get_experiment(client.get_run(other.run_id).info.experiment_id).name == "mine"
    with (
        stage("main", {"x": 1}, dataset="digits", force=True) as parent,
        stage("train", {**PARAMS, "epochs": 4}, dataset="digits", experiment="x") as kid,
    ):
        pass
    parent_exp = client.get_run(parent.run_id).info.experiment_id
    assert client.get_run(kid.run_id).info.experiment_id == parent_exp  # the parent's
    assert client.get_run(parent.run_id).info.run_name == "main-digits"  # the default name


def test_mlflow_runs_experiment_wins_and_an_adopted_run_is_renamed(mlflow_store, monkeypatch):
    import mlflow

    mlflow.set_experiment("active in this process")  # e.g. set by earlier code: no matter
    try:
        _experiment_wins_and_adopted_runs_are_renamed(monkeypatch)
    finally:
        mlflow.set_experiment(experiment_id="0")  # MLflow's default, in every store


def _experiment_wins_and_adopted_runs_are_renamed(monkeypatch) -> None:
    client = MlflowClient()
    chosen = client.create_experiment("chosen by the CLI")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", chosen)
    with stage("train", PARAMS, dataset="digits", experiment="ignored") as run:
        pass
    assert client.get_run(run.run_id).info.experiment_id == chosen
    assert client.get_experiment(chosen).tags["mlflow.experimentKind"] == (
        "custom_model_development"
    )  # marked when it said nothing
    pending = client.create_run(chosen)  # what `mlflow run` does before our process starts
    monkeypatch.setenv("MLFLOW_RUN_ID", pending.info.run_id)
    with stage("train", {**PARAMS, "epochs": 9}, dataset="digits", run_name="train x",
               data=("digits", None)) as r2:  # fmt: skip
        assert r2.run_id == pending.info.run_id
        r2.describe("**train x**: test accuracy 97.0 %.", "", "second part")
        r2.log_splits(data.load("digits", seed=0), ("train", "test"), r2.run_id)
    assert client.get_run(pending.info.run_id).info.run_name == "train x"
    note = client.get_run(r2.run_id).data.tags["mlflow.note.content"]
    assert note == "**train x**: test accuracy 97.0 %.\n\nsecond part"
    reuse = client.create_run(chosen)
    monkeypatch.setenv("MLFLOW_RUN_ID", reuse.info.run_id)
    with stage("train", {**PARAMS, "epochs": 9}, dataset="digits", run_name="train x",
               data=("digits", None)) as r3:  # fmt: skip
        assert r3.reused
    assert client.get_run(reuse.info.run_id).info.run_name == "train x (reused)"
    # the pointer's description links the reused run and carries its description
    pointer = client.get_run(reuse.info.run_id).data.tags["mlflow.note.content"]
    link = f"[train x](#/experiments/{chosen}/runs/{r2.run_id}{notes.VIEW})"
    assert (
        pointer == f"Reused {link}: the same parameters, upstream runs, code and data.\n\n{note}"
    )
    # and its datasets: the clean splits, with their contexts and the same digests
    mine, theirs = (
        [(d.dataset.name, d.dataset.digest, d.tags[0].value)
         for d in client.get_run(r).inputs.dataset_inputs]
        for r in (reuse.info.run_id, r2.run_id)
    )  # fmt: skip
    assert sorted(mine) == sorted(theirs)
    assert {(n, c) for n, _, c in mine} == {
        ("digits/train", "training"),
        ("digits/test", "evaluation"),
    }
