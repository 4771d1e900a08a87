"""The whole study on one dataset: one parent run, every stage a child run, and a report.

train → attacks (``fgsm``, ``pgd``, ``dgn`` with each of ``dgn_losses``, and seed 000's
``guided_retraining`` preset) → metric (every guidance metric on the preset's pool, seed 000's
protocol) → retrain (each of ``configs``) → advtrain (one model per attack) → evaluate (the
original and every adversarially trained model against every attack; transfer and adaptive)
→ report. An identical FINISHED stage is reused, not rerun (``force=true`` recomputes all).

The defaults are sized for ``digits`` on two CPU cores (README gives the measured time):
retraining uses 5 budget steps × 3 seeds with the dataset's epochs. The seeds' protocol sizes
are parameters: ``retrain_steps=20``, ``retrain_seeds`` and ``dgn_epochs`` (auto: the seeds').
Params: see ``Params``. Tags: ``robust.child.<name>`` = each stage's run id (``train``,
``attack.<label>``, ``metric``, ``retrain.<config>``, ``advtrain.<label>``, ``evaluate``).
Metrics: ``time/<name>_s``, ``energy/<name>_kwh`` per child stage (a reused stage costs ~0 here),
and ``time/report_s``. Artifacts: ``report.md``, ``report.html`` (self-contained), and each
figure as ``figures/*.png`` (:func:`robust.results.write_study_report`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines import _cli, advtrain, attack, evaluate, metric, retrain, train
from robust import data, guidance, results, retraining, tracking
from robust.attacks import dgn
from robust.errors import ConfigError
from robust.training import OPTIMIZERS
from robust.utils import DEVICES

log = logging.getLogger("pipelines.main")
ATTACKS = ("fgsm", "pgd", "dgn")
PRESET = "guided_retraining"
_SHARED = ("dataset", "seed", "device", "data_dir", "force", "quiet")
"""Params every child stage takes from the study as they are."""
_TRAINING = ("epochs", "lr", "batch_size", "optimizer")
"""Params of the original's training that adversarial training repeats."""


@dataclass(frozen=True)
class Params:
    dataset: str = "digits"
    """Dataset name: digits (bundled), mnist, fashion, cifar10, gtsrb or intel."""
    model: str | None = None
    """train: architecture from the zoo; auto picks the dataset's default."""
    epochs: int | None = None
    """train: epochs; auto: the dataset's default (as the seeds trained)."""
    lr: float | None = None
    """train: learning rate; auto: the dataset's default."""
    batch_size: int | None = None
    """train: mini-batch size; auto: the dataset's default."""
    optimizer: str | None = None
    """train: rmsprop, adam or sgd; auto: the dataset's default."""
    size: int | None = None
    """train: resize images to size × size (gtsrb, intel); auto: the dataset's native size."""
    grayscale: bool = False
    """train: convert images to one channel."""
    preset: str | None = None
    """train: a seed's model and data preset (see the train entry point)."""
    attacks: tuple[str, ...] = ATTACKS
    """Comma-separated attacks besides seed 000's preset (always run): fgsm, pgd, dgn."""
    dgn_losses: tuple[str, ...] = ("nce", "lrp", "susp")
    """Comma-separated DGN losses, one attack each (with attacks containing dgn)."""
    eps: float | None = None
    """L∞ budget of fgsm, pgd, dgn and advtrain; auto: 0.3 for digits/mnist/fashion, else
    8/255."""
    pgd_steps: int = 20
    """Iterations of pgd (and of evaluate's adaptive pgd)."""
    dgn_epochs: int | None = None
    """DGN epochs per class; auto: seed 004's for its datasets, 100 on digits."""
    metrics: tuple[str, ...] = ("all",)
    """Guidance metrics to score and retrain with: all, or comma-separated of nc, lsa, dsa,
    deepgini, entropy, random."""
    configs: tuple[str, ...] = ("c1", "c2", "c3")
    """Retraining configurations, comma-separated (one retrain stage each)."""
    retrain_steps: int | None = None
    """Budget steps per retraining curve; auto: 5 on digits, 20 (the seed's) otherwise."""
    retrain_seeds: int = 3
    """Repetitions of every retraining curve (the CIs need at least 2)."""
    retrain_epochs: int | None = None
    """Epochs of every retraining; auto: the dataset's default."""
    warm_start: bool = False
    """Retraining steps continue from the previous step (faster; not seed 000's protocol)."""
    workers: int | None = None
    """Processes that retrain in parallel on the CPU; auto: one per core up to 4, 1 on CUDA."""
    advtrain_mode: str = "static"
    """static (seed 004: each attack's adversarial train set) or online (regenerated while
    training; the preset, a fixed mix, is then left out)."""
    alpha: float = 0.5
    """advtrain: weight of the clean loss, α·CE(clean) + (1 − α)·CE(adversarial)."""
    adaptive: bool = True
    """evaluate: also attack every model itself (fgsm, pgd), not only transfer."""
    seed: int = 0
    """Seed of every stage."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    data_dir: str | None = None
    """Dataset directory; auto: $ROBUST_DATA or the default cache."""
    force: bool = False
    """Recompute every stage even if an identical FINISHED run exists."""
    quiet: bool = False
    """No progress bars."""

    def __post_init__(self) -> None:
        _cli.check_choice("dataset", self.dataset, data.DATASETS)
        _cli.check_choice("device", self.device, DEVICES)
        if self.optimizer is not None:
            _cli.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        for a in self.attacks:
            _cli.check_choice("attacks", a, ATTACKS)
        if "dgn" in self.attacks and not self.dgn_losses:
            raise ConfigError("dgn_losses must name at least one loss when attacks has dgn")
        for loss in self.dgn_losses:
            _cli.check_choice("dgn_losses", loss, dgn.LOSSES)
        for m in self.metrics or ("",):
            _cli.check_choice("metrics", m, ("all", *guidance.METRICS))
        if not self.configs:
            raise ConfigError("configs must name at least one of c1, c2, c3")
        for c in self.configs:
            _cli.check_choice("configs", c, retraining.CONFIGS)
        _cli.check_choice("advtrain_mode", self.advtrain_mode, advtrain.MODES)
        for name in ("pgd_steps", "dgn_epochs", "retrain_steps", "retrain_seeds"):
            _cli.check_min(name, getattr(self, name), 1)
        for name in ("retrain_epochs", "workers", "epochs", "batch_size"):
            _cli.check_min(name, getattr(self, name), 1)
        _cli.check_min("eps", self.eps, 0)
        _cli.check_min("seed", self.seed, 0)
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1], but got alpha={self.alpha}")
        if self.retrain_seeds < 2:
            log.warning("retrain_seeds=%d: the metric ranking has no CIs", self.retrain_seeds)


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


def attack_kinds(p: Params) -> dict[str, dict[str, Any]]:
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


def plan(p: Params) -> list[_Stage]:
    """The study's stages in order; every one's Params are checked before anything runs."""
    shared = {k: getattr(p, k) for k in _SHARED}
    trained = ("model", *_TRAINING, "size", "grayscale", "preset")
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
            | {k: getattr(p, k) for k in _TRAINING}
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


def main(p: Params) -> str:
    """Run the study; return the parent run id."""
    stages = plan(p)
    with tracking.stage(
        "main", _cli.as_dict(p), dataset=p.dataset, force=True, quiet=p.quiet
    ) as run:
        ids: dict[str, str] = {}
        for i, s in enumerate(stages, start=1):
            log.info("study stage %d/%d: %s", i, len(stages), s.name)
            with run.phase(s.name):
                ids[s.name] = s.run(s.params(ids))
            run.set_tags({f"robust.child.{s.name}": ids[s.name]})
        with run.phase("report"):
            written = results.write_study_report(run.run_id, run.outdir / "report")
            run.log_artifacts(run.outdir / "report")
        log.info(
            "study on %s done: %d stages; report %s (run %s)",
            p.dataset,
            len(stages),
            ", ".join(w.name for w in written if w.suffix in (".md", ".html")),
            run.run_id,
        )
        return run.run_id


if __name__ == "__main__":
    _cli.entry(main, Params)
