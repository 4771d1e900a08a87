"""Running a stage's work, or the study's stages, on Ray (``engine=ray``): connecting for the
stage's duration, and the study's stages as a graph of Ray tasks, each a child run of the
study's run in the shared store."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from pipelines._params import Fanout
from robust import engine, tracking
from robust.tracking import store


@contextlib.contextmanager
def connected(p: Fanout, *, logs: bool = False) -> Iterator[str]:
    """Connect to Ray for the stage when ``p.engine`` is ray (not connected already), and
    disconnect after; yields the tracking URI workers must log to (``logs``: they log, so on a
    cluster the store must be a server, checked before Ray starts)."""
    uri = store.for_workers(cluster=logs and p.cluster is not None)
    if p.engine != "ray" or engine.is_connected():
        yield uri
        return
    engine.connect(p.cluster, env={"MLFLOW_TRACKING_URI": uri} if logs else None)
    try:
        yield uri
    finally:
        engine.disconnect()


@contextlib.contextmanager
def ending_orphans(parent_run_id: str) -> Iterator[None]:
    """On any exception (a task's error, Ctrl-C, SIGTERM) mark the children of
    ``parent_run_id`` still RUNNING FAILED: their workers were stopped with the parent."""
    try:
        yield
    except BaseException as exc:
        why = "" if isinstance(exc, GeneratorExit) else f" ({type(exc).__name__}: {exc})"
        tracking.end_orphans(parent_run_id, f"stopped with its parent run{why}")
        raise


def run_child(
    stage: Any, uri: str, parent_run_id: str, *needed: tuple[str, int]
) -> tuple[str, int]:
    """A study stage in a Ray worker: run (or reuse) ``stage`` as a child of ``parent_run_id``
    in the store at ``uri``, with the run ids of the stages it needs (each an earlier call's
    result); return its run id and attempt number."""
    os.environ["MLFLOW_TRACKING_URI"] = uri  # a worker of a cluster does not inherit ours
    ids = dict(zip(stage.needs, (run_id for run_id, _ in needed), strict=True))
    with tracking.child_of(parent_run_id, stage.name) as attempt:
        return stage.run(stage.params(ids)), attempt


def stage_resources(device: str) -> engine.Resources:
    """What a study stage's task holds: one CPU, and a share of a GPU when the cluster has
    GPUs and ``device`` is not cpu (Ray hides the GPUs from a task that holds none)."""
    gpus = engine.cluster_gpus() if device != "cpu" else 0
    return engine.Resources(num_cpus=1, num_gpus=STAGE_GPU_SHARE if gpus > 0 else 0.0)


STAGE_GPU_SHARE = 0.25
"""The fraction of a GPU a study stage's task holds on a cluster with GPUs."""


def run_study(
    stages: list[Any], run: tracking.StageRun, uri: str, device: str = "auto"
) -> Iterator[tuple[str, str]]:
    """Run the study's stages as Ray tasks holding :func:`stage_resources` (each when the
    stages it needs are done; the others at the same time) and yield ``(name, run id)`` as
    each finishes, after tagging the parent with the run (``robust.child.<name>``) and the
    attempt it came from (``robust.attempt.<name>``) and logging the stage's own time and energy
    (``time/<name>_s``, ``energy/<name>_kwh``; 0 for a reused stage)."""
    nodes = [engine.Node(s.name, run_child, (s, uri, run.run_id), needs=s.needs) for s in stages]
    resources = stage_resources(device)
    with ending_orphans(run.run_id):
        yield from _finished(engine.run_graph("ray", nodes, resources=resources), run)


def _finished(
    done: Iterator[tuple[str, Any]], run: tracking.StageRun
) -> Iterator[tuple[str, str]]:
    for name, (run_id, attempt) in done:
        child = tracking.fetch(run_id)
        ours = child.data.tags.get("mlflow.parentRunId") == run.run_id
        m = child.data.metrics if ours else {}
        run.set_tags({f"robust.child.{name}": run_id, f"robust.attempt.{name}": str(attempt)})
        run.log_metrics(
            {
                f"time/{name}_s": m.get("time/total_s", 0.0),
                f"energy/{name}_kwh": m.get("energy/total_kwh", 0.0),
            }
        )
        yield name, run_id
