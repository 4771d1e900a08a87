"""Stage runs started elsewhere as children of a study's run (robust/tracking/child.py): the
tags and experiment a child gets, the attempts of a task whose worker died, and the children
left RUNNING when their parent stops early."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from robust import tracking


@pytest.fixture
def parent(mlflow_store) -> str:
    """A finished parent run in an experiment of its own (not the default one)."""
    experiment = mlflow.create_experiment("study")
    with mlflow.start_run(experiment_id=experiment) as run:
        return run.info.run_id


def _stage(task: str) -> str:
    with tracking.stage("noop", {"task": task}, force=True, quiet=True) as run:
        run.log_metrics({"noop/x": 1.0})
        return run.run_id


def test_a_stage_started_under_child_of_is_a_child_in_the_parent_s_experiment(parent):
    with tracking.child_of(parent, "attack.fgsm") as attempt:
        child = _stage("a")
    run = MlflowClient().get_run(child)
    assert attempt == 1
    assert run.info.experiment_id == MlflowClient().get_run(parent).info.experiment_id
    tags = run.data.tags
    assert tags["mlflow.parentRunId"] == parent
    assert (tags["robust.study_task"], tags["robust.attempt"]) == ("attack.fgsm", "1")
    assert int(tags["robust.pid"]) > 0 and tags["robust.host"]
    assert run.info.status == "FINISHED"
    assert tracking.child.current() is None  # only inside the block


def test_a_dead_attempt_is_failed_and_the_retry_counts_on(parent):
    client = MlflowClient()
    experiment = client.get_run(parent).info.experiment_id
    dead = client.create_run(
        experiment,
        tags={"mlflow.parentRunId": parent, "robust.study_task": "metric", "robust.attempt": "1"},
    ).info.run_id  # left RUNNING, as by a killed worker
    other = client.create_run(
        experiment, tags={"mlflow.parentRunId": parent, "robust.study_task": "train"}
    ).info.run_id
    with tracking.child_of(parent, "metric") as attempt:
        retry = _stage("metric")
    assert attempt == 2
    assert client.get_run(retry).data.tags["robust.attempt"] == "2"
    assert client.get_run(dead).info.status == "FAILED"
    assert client.get_run(dead).data.tags["robust.error"] == (
        "its worker died; the task was run again as attempt 2"
    )
    assert client.get_run(other).info.status == "RUNNING"  # another task: not touched


def test_children_left_running_by_a_stopped_parent_are_failed(parent):
    client = MlflowClient()
    experiment = client.get_run(parent).info.experiment_id
    running = client.create_run(experiment, tags={"mlflow.parentRunId": parent}).info.run_id
    with tracking.child_of(parent, "train"):
        done = _stage("train")
    stranger = client.create_run(experiment).info.run_id  # not a child
    assert tracking.end_orphans(parent, "stopped with its parent run") == [running]
    assert client.get_run(running).info.status == "FAILED"
    assert client.get_run(running).data.tags["robust.error"] == "stopped with its parent run"
    assert client.get_run(done).info.status == "FINISHED"
    assert client.get_run(stranger).info.status == "RUNNING"
