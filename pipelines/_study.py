"""The study's plan: its child stages in order, each with its pipeline and its Params built from
the run ids of the stages before it (``pipelines.main`` runs them in one parent run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines import advtrain, attack, evaluate, metric, retrain, train

PRESET = "guided_retraining"
SHARED = ("dataset", "seed", "device", "data_dir", "force", "quiet")
"""Params every child stage takes from the study as they are."""
TRAINING = ("epochs", "lr", "batch_size", "optimizer")
"""Params of the original's training that adversarial training repeats."""


@dataclass(frozen=True)
class _Stage:
    """One child stage of the study: its tag name, its pipeline and its Params factory."""

    name: str
    run: Callable[[Any], str]
    params: Callable[[dict[str, str]], Any]
    """Builds the stage's Params from the run ids of the stages before it (by name)."""


def _stage(name: str, module: Any, kw: dict[str, Any], **upstream: str) -> _Stage:
    """A child stage running ``module.main`` with ``kw`` plus each ``upstream`` param set to the
    run id of the named earlier stage. Its Params are built once now with the upstream runs
    unset, so a bad parameter fails before any stage runs."""
    module.Params(**kw)
    return _Stage(
        name,
        module.main,
        lambda ids: module.Params(**kw, **{k: ids[v] for k, v in upstream.items()}),
    )


def attack_kinds(p: Any) -> dict[str, dict[str, Any]]:
    """Each attack of the study by label (``fgsm``, ``pgd``, ``dgn-<loss>``, the preset) with
    the attack stage's params that differ from their defaults."""
    kinds: dict[str, dict[str, Any]] = {}
    for a in p.attacks:
        if a == "dgn":
            for loss in p.dgn_losses:
                kinds[f"dgn-{loss}"] = {"method": "dgn", "loss": loss, "dgn_epochs": p.dgn_epochs}
        else:
            kinds[a] = {"method": a, "eps": p.eps, "steps": p.pgd_steps}
    kinds[PRESET] = {"preset": PRESET}
    return kinds


def plan(p: Any) -> list[_Stage]:
    """The study's stages in order; every one's Params are checked before anything runs."""
    shared = {k: getattr(p, k) for k in SHARED}
    trained = ("model", *TRAINING, "size", "grayscale", "preset")
    stages = [_stage("train", train, shared | {k: getattr(p, k) for k in trained})]
    kinds = attack_kinds(p)
    for label, kw in kinds.items():
        stages.append(_stage(f"attack.{label}", attack, shared | kw, model_run="train"))
    kw = shared | {"metrics": p.metrics}
    stages.append(_stage("metric", metric, kw, attack_run=f"attack.{PRESET}"))
    for c in p.configs:
        kw = shared | {
            "config": c,
            "steps": p.retrain_steps,
            "seeds": p.retrain_seeds,
            "epochs": p.retrain_epochs,
            "warm_start": p.warm_start,
            "workers": p.workers,
        }
        stages.append(_stage(f"retrain.{c}", retrain, kw, metric_run="metric"))
    for label, kind in kinds.items():
        if p.advtrain_mode == "online" and label == PRESET:
            continue  # a fixed mix of attacks: there is nothing to regenerate online
        kw = (
            shared
            | {k: getattr(p, k) for k in TRAINING}
            | {  # trained as the original
                "mode": p.advtrain_mode,
                "method": kind.get("method", "pgd"),
                "alpha": p.alpha,
                "eps": p.eps,
                "steps": p.pgd_steps,
            }
        )
        stages.append(
            _stage(
                f"advtrain.{label}", advtrain, kw, model_run="train", attack_run=f"attack.{label}"
            )
        )
    kw = shared | {"adaptive": p.adaptive, "eps": p.eps, "steps": p.pgd_steps}
    evaluate.Params(**kw)

    def matrix(ids: dict[str, str]) -> evaluate.Params:
        models = (ids["train"], *(v for k, v in ids.items() if k.startswith("advtrain.")))
        attacks = tuple(v for k, v in ids.items() if k.startswith("attack."))
        return evaluate.Params(**kw, model_runs=models, attack_runs=attacks)

    stages.append(_Stage("evaluate", evaluate.main, matrix))
    return stages
