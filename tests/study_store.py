"""A small real study in its own store, built once per test session and shared by
tests/test_results.py and tests/test_readme.py.

train, attack, metric, then retrain and evaluate as children of a hand-made parent run; a
parent that reused ``train``; reuse pointers made the way ``mlflow run`` makes them; and a
``main``-like parent naming its stages (some through pointers) in ``robust.child.*`` tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from pipelines import _cli, attack, evaluate, metric, retrain, train
from tests.conftest import isolated_store

TRAIN = train.Params(epochs=3, quiet=True)
ATTACK = attack.Params(method="fgsm", quiet=True)
METRIC = metric.Params(metrics=("deepgini", "random"), quiet=True)
RETRAIN = retrain.Params(
    config="c2",
    metrics=("deepgini", "random"),
    steps=2,
    seeds=2,
    epochs=1,
    workers=1,  # in this process: the phases are the same on every machine
    quiet=True,
)
EVALUATE = evaluate.Params(adaptive=("none",), masking=False, quiet=True)
# the same stages as command lines, for the pointers (mlflow run passes strings)
ARGV = {
    "retrain": (
        retrain,
        [
            *("--config", "c2", "--metrics", "deepgini,random", "--steps", "2"),
            *("--seeds", "2", "--epochs", "1", "--workers", "1", "--quiet", "true"),
        ],
    ),
    "evaluate": (evaluate, ["--adaptive", "none", "--masking", "false", "--quiet", "true"]),
    # last: the newest train-tagged run is a pointer, which `auto` look-ups must see past
    "train": (train, ["--epochs", "3", "--quiet", "true"]),
}


@dataclass(frozen=True)
class Study:
    root: Path
    train: str
    attack: str
    metric: str
    parent: str  # a hand-made parent run holding retrain and evaluate
    retrain: str
    evaluate: str
    main: str  # a parent that reused `train`: it names it by tag robust.child.train only
    pointers: dict[str, str]  # stage -> a reuse pointer run made as `mlflow run` makes it
    named: str  # a main-like parent naming every stage by robust.child.* (some via pointers)


_STUDY: Study | None = None


def _pointer(stage: str, experiment: str) -> str:
    """Run ``stage`` again as ``mlflow run`` does: in a run created before robust starts
    (``MLFLOW_RUN_ID``); the stage is reused, so that run becomes a pointer."""
    module, argv = ARGV[stage]
    client = mlflow.MlflowClient()
    pending = client.create_run(experiment).info.run_id  # in the stages' experiment
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_RUN_ID", pending)
        assert _cli.run(module.main, module.Params, argv) == 0
    return pending


def build(tmp_path_factory) -> Study:
    """The study (built on first use in the session)."""
    global _STUDY
    if _STUDY is not None:
        return _STUDY
    root = tmp_path_factory.mktemp("store")
    with isolated_store(root):
        train_id = train.main(TRAIN)
        attack_id = attack.main(ATTACK)
        metric_id = metric.main(METRIC)
        client = mlflow.MlflowClient()
        exp = client.get_run(train_id).info.experiment_id  # robust-digits: every stage's
        with mlflow.start_run(run_name="study", experiment_id=exp) as parent:
            mlflow.set_tags({"robust.stage": "main", "robust.dataset": "digits"})
            retrain_id = retrain.main(RETRAIN)
            evaluate_id = evaluate.main(EVALUATE)
        with mlflow.start_run(run_name="reusing parent", experiment_id=exp) as reusing:
            mlflow.set_tags({"robust.stage": "main", "robust.child.train": train_id})
        pointers = {stage: _pointer(stage, exp) for stage in ARGV}
        targets = {"train": train_id, "retrain": retrain_id, "evaluate": evaluate_id}
        for stage, target in targets.items():
            tags = client.get_run(pointers[stage]).data.tags
            assert tags["robust.reused_from"] == target, stage
        named = client.create_run(
            exp,
            run_name="named children",
            tags={
                "robust.stage": "main",
                "robust.dataset": "digits",
                "robust.child.train": pointers["train"],
                "robust.child.attack.fgsm": attack_id,
                "robust.child.metric": metric_id,
                "robust.child.retrain.c2": pointers["retrain"],
                "robust.child.evaluate": pointers["evaluate"],
            },
        ).info.run_id
        client.set_terminated(named, "FINISHED")
    _STUDY = Study(
        root,
        train_id,
        attack_id,
        metric_id,
        parent.info.run_id,
        retrain_id,
        evaluate_id,
        reusing.info.run_id,
        pointers,
        named,
    )
    return _STUDY
