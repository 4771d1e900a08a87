"""The study's plan: its child stages in order, each with its pipeline and its Params built from
the run ids of the stages before it (``pipelines.main`` runs them in one parent run)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from pipelines import advtrain, attack, evaluate, metric, retrain, train
from robust.attacks import default_eps

PRESET = "guided_retraining"
SHARED = ("dataset", "seed", "device", "data_dir", "force", "quiet")
"""Params every child stage takes from the study as they are."""
TRAINING = ("epochs", "lr", "batch_size", "optimizer")
"""Params of the original's training that adversarial training repeats."""
SELECTION_SPLITS = ("train", "val", "test")
"""The preset attack's splits: retrain chooses its best steps on the adversarial val set too."""
CURVE = (0.25, 0.5, 0.75)
"""evaluate's ε-curve: these fractions of the study's ε (the matrix's), besides ε itself."""


@dataclass(frozen=True)
class _Stage:
    """One child stage of the study: its tag name, its pipeline module, the params that differ
    from its defaults, and the params that are earlier stages' run ids (param → stage name, or
    a tuple of names for a tuple param). Plain data, so a Ray worker can be sent it."""

    name: str
    module: str
    kw: dict[str, Any]
    upstream: dict[str, str | tuple[str, ...]] = field(default_factory=dict)

    @property
    def needs(self) -> tuple[str, ...]:
        """The stages whose run ids this one's Params take, in a fixed order."""
        names = (n for v in self.upstream.values() for n in ((v,) if isinstance(v, str) else v))
        return tuple(dict.fromkeys(names))

    def params(self, ids: dict[str, str]) -> Any:
        """The stage's Params, with each upstream param set from ``ids`` (stage → run id)."""
        up = {
            k: ids[v] if isinstance(v, str) else tuple(ids[n] for n in v)
            for k, v in self.upstream.items()
        }
        return self.pipeline.Params(**self.kw, **up)

    @property
    def pipeline(self) -> Any:
        return importlib.import_module(f"pipelines.{self.module}")

    def run(self, params: Any) -> str:
        """Run (or reuse) the stage; return its run id."""
        return self.pipeline.main(params)


def _stage(name: str, module: Any, kw: dict[str, Any], **upstream: Any) -> _Stage:
    """A child stage running ``module.main`` with ``kw`` plus each ``upstream`` param set from
    the named earlier stages. Its Params are built once now with the upstream runs unset, so
    a bad parameter fails before any stage runs."""
    module.Params(**kw)
    return _Stage(name, module.__name__.rpartition(".")[2], kw, upstream)


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
    kinds[PRESET] = {"preset": PRESET, "splits": SELECTION_SPLITS}
    return kinds


def plan(p: Any) -> list[_Stage]:
    """The study's stages in order; every one's Params are checked before anything runs."""
    shared = {k: getattr(p, k) for k in SHARED}
    trained = ("model", *TRAINING, "size", "grayscale", "preset", "init_seed")
    stages = [_stage("train", train, shared | {k: getattr(p, k) for k in trained})]
    kinds = attack_kinds(p)
    for label, kw in kinds.items():
        stages.append(_stage(f"attack.{label}", attack, shared | kw, model_run="train"))
    kw = shared | {"metrics": p.metrics}
    stages.append(_stage("metric", metric, kw, attack_run=f"attack.{PRESET}"))
    scored = ["metric"]
    for k in range(2, p.originals + 1):  # another original: train seed, its preset, its orders
        o = f"original{k}"
        init = {k_: getattr(p, k_) for k_ in trained} | {"init_seed": p.seed + k - 1}
        stages.append(_stage(f"{o}.train", train, shared | init))
        preset = shared | kinds[PRESET]
        stages.append(_stage(f"{o}.attack", attack, preset, model_run=f"{o}.train"))
        stages.append(_stage(f"{o}.metric", metric, kw, attack_run=f"{o}.attack"))
        scored.append(f"{o}.metric")
    for c in p.configs:
        kw = shared | {
            "config": c,
            "steps": p.retrain_steps,
            "budgets": p.budgets,
            "seeds": p.retrain_seeds,
            "margin": p.margin,
            "epochs": p.retrain_epochs,
            "warm_start": p.warm_start,
            "workers": p.workers,
            "engine": p.engine,
            "ray_address": p.ray_address,
        }
        stages.append(_stage(f"retrain.{c}", retrain, kw, metric_run=tuple(scored)))
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
    if p.pgd_at:  # Madry et al.: adversarial loss only, PGD regenerated for every batch
        kw = shared | {k: getattr(p, k) for k in TRAINING} | {
            "mode": "online", "method": "pgd", "alpha": 0.0, "eps": p.eps,
        }  # fmt: skip
        stages.append(_stage("advtrain.pgd-at", advtrain, kw, model_run="train"))
    eps = p.eps if p.eps is not None else default_eps(p.dataset)
    kw = shared | {
        "adaptive": p.adaptive, "steps": p.pgd_steps, "apgd_steps": p.apgd_steps,
        "dgn_epochs": p.adaptive_dgn_epochs, "eps": (eps, *(round(f * eps, 6) for f in CURVE)),
    }  # fmt: skip
    names = [s.name for s in stages]
    models = ("train", *(n for n in names if n.startswith("advtrain.")))
    attacks = tuple(n for n in names if n.startswith("attack."))
    retrains = tuple(n for n in names if n.startswith("retrain."))
    stages.append(
        _stage(
            "evaluate", evaluate, kw, model_runs=models, attack_runs=attacks,
            retrain_runs=retrains,
        )
    )  # fmt: skip
    return stages
