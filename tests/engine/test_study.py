"""``main`` with ``engine=ray`` (pipelines/_fanout.py, robust/engine): the same tables as
``engine=local``; a stage whose worker is killed mid-task is retried as a new run and the
study completes; on a two-node cluster whose second node has its own working directory and
``ROBUST_DATA``, with every worker logging to the shared tracking server.

Both engines run with one torch thread per process (a Ray task has one per CPU it holds), so
the numbers must be equal bit for bit; other thread counts change float rounding only.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import threading
import time

import mlflow
import pytest
import ray
import torch
from mlflow import MlflowClient

from pipelines import main
from robust import engine, results
from robust.tracking import lineage
from tests.conftest import experiment_ids, isolated_store
from tests.pipelines.test_main import CHILDREN, TINY

COSTS = re.compile(r"^(time|energy|emissions|process|gpu|system)/|fit_s|_s$|_kwh$|_kg$")
"""Metrics that measure the run (time, energy, load), not its results."""
KILLED = "retrain.c2"


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tables(parent: str) -> dict[str, dict[str, float]]:
    """Each child stage's result metrics, by stage name, and every cell of evaluate's
    matrices (``<kind>/<row>/<column>``; labels are run names, the same on every worker)."""
    client = MlflowClient()
    tags = client.get_run(parent).data.tags
    children = {k.removeprefix("robust.child."): v for k, v in tags.items() if "child." in k}
    out = {
        name: {k: v for k, v in client.get_run(rid).data.metrics.items() if not COSTS.search(k)}
        for name, rid in children.items()
    }
    for kind in ("transfer", "adaptive"):
        matrix = results.robustness_matrix(children["evaluate"], kind)
        out["evaluate"] |= {f"{kind}/{row}/{col}": v for (row, col), v in matrix.stack().items()}
    return out


@pytest.fixture(scope="module")
def local_study(tmp_path_factory, one_thread):
    with isolated_store(tmp_path_factory.mktemp("local")):
        lineage.forget()
        yield tables(main.main(TINY))


class _Killer(threading.Thread):
    """Kills the process running stage ``task`` of the study as soon as its run is RUNNING."""

    def __init__(self, uri: str, task: str) -> None:
        super().__init__(daemon=True)
        self.client, self.task, self.killed = MlflowClient(uri), task, None
        self.stop = threading.Event()

    def run(self) -> None:
        query = f"tags.`robust.study_task` = '{self.task}' and attributes.status = 'RUNNING'"
        while not self.stop.is_set() and self.killed is None:
            for r in self.client.search_runs(experiment_ids(self.client), query):
                if "robust.pid" in r.data.tags:
                    os.kill(int(r.data.tags["robust.pid"]), signal.SIGKILL)
                    self.killed = r.info.run_id
            time.sleep(0.1)


@pytest.fixture(scope="module")
def ray_study(tmp_path_factory, one_thread):
    """The tiny study on a local Ray instance; the worker running retrain.c2 is SIGKILLed."""
    engine.disconnect()
    with isolated_store(tmp_path_factory.mktemp("ray")) as uri:
        lineage.forget()
        killer = _Killer(uri, KILLED)
        killer.start()
        try:
            parent = main.main(dataclasses.replace(TINY, engine="ray"))
        finally:
            killer.stop.set()
            killer.join()
        yield parent, tables(parent), killer.killed
    assert not engine.is_connected()  # main disconnected the instance it started


def test_ray_gives_the_same_tables_as_local(local_study, ray_study):
    _, on_ray, _ = ray_study
    assert sorted(on_ray) == sorted(CHILDREN)
    assert on_ray == local_study
    assert len(on_ray["evaluate"]) > 20 and len(on_ray["retrain.c2"]) > 20  # compared something


def test_every_stage_is_a_finished_child_of_the_study(ray_study):
    parent, _, _ = ray_study
    client = MlflowClient()
    tags = client.get_run(parent).data.tags
    for name in CHILDREN:
        child = client.get_run(tags[f"robust.child.{name}"])
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent
        assert child.data.tags["robust.study_task"] == name
        assert child.data.tags["robust.ray_node"]  # it ran in a Ray task
        assert child.info.experiment_id == client.get_run(parent).info.experiment_id


def test_a_stage_whose_worker_was_killed_is_failed_and_retried_as_a_new_run(ray_study):
    parent, _, killed = ray_study
    assert killed is not None, f"the {KILLED} run was never seen RUNNING"
    client = MlflowClient()
    dead = client.get_run(killed)
    assert dead.info.status == "FAILED"
    assert dead.data.tags["robust.error"].startswith("its worker died; the task was run again")
    tags = client.get_run(parent).data.tags
    used = client.get_run(tags[f"robust.child.{KILLED}"])
    assert used.info.run_id != killed and used.info.status == "FINISHED"
    assert used.data.tags["robust.attempt"] == tags[f"robust.attempt.{KILLED}"] == "2"
    assert tags["robust.attempt.train"] == "1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node and a second node on this machine; the second starts in its own working
    directory with its own ROBUST_DATA (nothing may rely on the driver's disk layout)."""
    from ray.cluster_utils import Cluster

    engine.disconnect()
    second = tmp_path_factory.mktemp("second-node")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(second)
        mp.setenv("ROBUST_DATA", str(second / "data"))
        cluster.add_node(num_cpus=1, resources={"second": 1})
    cluster.wait_for_nodes()
    yield cluster, second
    engine.disconnect()
    cluster.shutdown()


def test_a_study_on_a_two_node_cluster_logs_to_the_server_and_matches_local(
    cluster, mlflow_server, local_study, tmp_path, one_thread
):
    cluster, second = cluster

    def where(_: object) -> tuple[str, str, str | None]:
        # defined here so that cloudpickle sends it by value: the second node, started in a
        # directory of its own, cannot import the tests package (robust and pipelines it can)
        return ray.get_runtime_context().get_node_id(), os.getcwd(), os.environ.get("ROBUST_DATA")

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(mlflow_server.uri)
        mlflow.set_experiment("two-nodes")
        lineage.forget()
        engine.connect(cluster.address)
        try:
            nodes = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
            probe = ray.remote(where)
            seen = {
                ray.get(
                    probe.options(
                        scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                            node, soft=False
                        )
                    ).remote(None)
                )
                for node in nodes
            }
        finally:
            engine.disconnect()
        parent = main.main(dataclasses.replace(TINY, engine="ray", ray_address=cluster.address))
        on_cluster = tables(parent)
        client = MlflowClient()
        ran_on = {
            client.get_run(rid).data.tags["robust.ray_node"]
            for k, rid in client.get_run(parent).data.tags.items()
            if k.startswith("robust.child.")
        }
        mlflow.set_experiment(experiment_id="0")
    assert len(nodes) == 2
    assert {d for _, _, d in seen} == {os.environ.get("ROBUST_DATA"), str(second / "data")}
    assert any(cwd == str(second) for _, cwd, _ in seen)  # the second node's own directory
    assert ran_on == set(nodes)  # stages ran on both nodes
    assert on_cluster == local_study
    assert os.listdir(tmp_path) == []  # every worker logged to the server, not to files here


@pytest.mark.parametrize(
    ("gpus", "device", "share"), [(0.0, "auto", 0.0), (2.0, "auto", 0.25), (2.0, "cpu", 0.0)]
)
def test_a_stage_holds_a_share_of_a_gpu_only_on_a_cluster_with_gpus(
    monkeypatch, gpus, device, share
):
    """Ray hides the GPUs from a task that holds none, so on a GPU cluster a stage must hold
    a share to run on CUDA; with device=cpu it needs none."""
    from pipelines import _fanout

    monkeypatch.setattr(engine, "cluster_gpus", lambda: gpus)
    held = _fanout.stage_resources(device)
    assert (held.num_cpus, held.num_gpus) == (1, share)
