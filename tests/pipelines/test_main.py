"""The study pipeline (pipelines/main.py): one parent run, each stage a child run."""

from __future__ import annotations

from mlflow import MlflowClient

from pipelines import main, train


def test_main_runs_train_as_a_child_and_reuses_it(mlflow_store):
    p = train.Params(epochs=1, quiet=True)
    parent = main.main(p)
    client = MlflowClient()
    r = client.get_run(parent)
    assert r.info.status == "FINISHED" and r.data.tags["robust.stage"] == "main"
    child = r.data.tags["robust.child.train"]
    c = client.get_run(child)
    assert c.data.tags["mlflow.parentRunId"] == parent
    assert c.data.tags["robust.stage"] == "train" and "test/accuracy" in c.data.metrics
    assert r.data.metrics["time/train_s"] <= r.data.metrics["time/total_s"]

    again = main.main(p)  # a new parent, the finished train stage reused
    assert again != parent
    assert client.get_run(again).data.tags["robust.child.train"] == child
