"""Adversarially train a model: α·CE(clean) + (1 − α)·CE(adversarial), static or online, or
online TRADES: CE(clean) + β·KL(f(clean) ‖ f(adversarial)) (Zhang et al., ICML 2019,
https://arxiv.org/abs/1901.08573), its inputs maximising that KL (``method=trades``).

Inputs: ``model_run`` (a train or advtrain run: the architecture, the dataset and, with
``start=finetune``, the starting weights) and ``attack_run`` (static: its
``adversarial/train.safetensors``, each input paired with ``train.x[index]``, so a preset's
subset trains on those pairs only; online dgn: its ``generators/``, trained further every
epoch; with its adversarial test set, if it has one, the trained model's transfer accuracy).
Params: see ``Params``; seed 004 is ``mode=static alpha=0.5 start=fresh``; TRADES's CIFAR-10
setting is ``mode=online method=trades beta=6 eps=0.031 steps=10`` (step 0.0078 here, 0.007
there).
Metrics: per epoch (step = epoch) ``train/loss`` (the objective), ``train/accuracy`` (clean),
``train/clean_loss``, ``train/adversarial_loss`` (CE on the adversarial inputs; trades: the KL
term before β, so loss = clean_loss + β·adversarial_loss), ``train/adversarial_accuracy``,
``val/loss``, ``val/accuracy``, online also ``train/attack_s``, online dgn also
``dgn/class<c>_loss`` (step = DGN epochs so far); ``test/accuracy``, ``test/loss``,
``test/precision_macro``, ``test/recall_macro``, ``test/f1_macro`` (clean test inputs);
``transfer/adversarial_accuracy``, ``transfer/clean_accuracy``, ``transfer/success_rate`` (on
the attack run's adversarial test set); ``train/samples_per_s``; the stage run's ``time/*``,
``energy/*``, ``process/*``.
Artifacts: as ``train``: ``model/``, the MLflow model ``advtrain-…``, ``confusion/`` (so
``attack``, ``metric`` and ``evaluate`` take ``model_run=<this run>``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from pipelines import _cli, _params
from robust import attacks, models, tracking
from robust.errors import ConfigError
from robust.evaluation import attack_report, report_test_set
from robust.tracking.notes import percent
from robust.training import (
    EVERY,
    adversarial_fit,
    dgn_attack,
    online_attack,
    static_pairs,
    trades_attack,
)
from robust.utils import resolve_device, seed_everything

MODES = ("static", "online")
METHODS = ("fgsm", "pgd", "dgn", "trades")
STARTS = ("fresh", "finetune")


@dataclass(frozen=True)
class Params(_params.Registering, _params.Training):
    model_run: str | None = None
    """Train or advtrain run: architecture, data, finetune weights; auto: attack_run's model,
    else the newest FINISHED train run on dataset."""
    attack_run: str | None = None
    """Attack run: static pairs / online dgn generators / transfer test set; auto: the newest
    FINISHED one on dataset (static, online dgn), none (online fgsm, pgd, trades)."""
    mode: str = "static"
    """static: the attack run's adversarial training set (seed 004); online: regenerated
    against the model being trained."""
    method: str = "pgd"
    """online: fgsm, pgd, dgn (the attack run's generators, trained further each epoch) or
    trades (CE(clean) + beta * KL, its inputs maximising the KL; online only)."""
    every: str | None = None
    """online: regenerate for every batch or for the training set every epoch; auto: batch
    (fgsm, pgd, trades), epoch (dgn, the only one it allows)."""
    alpha: float | None = None
    """Weight α of the clean term in [0, 1], all but trades; auto: 0.5 (seed 004); 1 is clean
    training. trades has none (beta weighs its KL term; logged as auto): giving one is an
    error."""
    beta: float | None = None
    """trades: weight β ≥ 0 of the KL term; auto: 6.0 (the reference's on CIFAR-10, 1.0 on
    MNIST). Only trades has one (others log auto): giving it to another method is an error."""
    eps: float | None = None
    """online: budget; auto: the generators' (dgn), else 0.3 for digits/mnist/fashion, 8/255."""
    steps: int = 10
    """online pgd, trades: iterations per batch (each one forward and backward pass)."""
    step_size: float | None = None
    """online pgd, trades: absolute step; auto: 2.5 * eps / steps (trades at 10 steps: eps/4,
    where the reference took 0.007 at eps 0.031)."""
    dgn_epochs: int = 5
    """online dgn: epochs the generators train against the current model before each epoch."""
    start: str = "fresh"
    """fresh: new weights with model_run's architecture (seed 004); finetune: model_run's."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, allowed in (("mode", MODES), ("method", METHODS), ("start", STARTS)):
            _cli.check_choice(name, getattr(self, name), allowed)
        if self.every is not None:
            _cli.check_choice("every", self.every, EVERY)
        if self.alpha is not None and not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1], but got alpha={self.alpha}")
        _cli.check_min("beta", self.beta, 0)
        trades = self.method == "trades"
        if trades and self.mode != "online":
            raise ConfigError(
                "method=trades crafts its inputs against the model being trained: mode must be "
                f"online, but got mode={self.mode}"
            )
        if trades and self.alpha is not None:
            raise ConfigError(
                "alpha weighs the mixed loss of fgsm, pgd and dgn; trades weighs its KL term "
                f"with beta: leave alpha auto with method=trades, but got alpha={self.alpha}"
            )
        if not trades and self.beta is not None:
            raise ConfigError(
                "beta weighs the KL term of method=trades only: leave it auto with "
                f"method={self.method}, but got beta={self.beta}"
            )
        if self.mode == "online" and self.method == "dgn" and self.every == "batch":
            raise ConfigError(
                "method=dgn trains the generators, then regenerates the training set, once per "
                "epoch: every must be epoch (or auto), but got every=batch"
            )
        if self.eps is not None:
            attacks.check_eps(self.eps)
        _cli.check_min("step_size", self.step_size, 0, strict=True)
        for name in ("steps", "dgn_epochs"):
            _cli.check_min(name, getattr(self, name), 1)

    def resolved(self) -> Params:
        """These parameters with every training ``auto`` replaced by the dataset's default."""
        online, gradient = self.mode == "online", self.method in ("fgsm", "pgd", "trades")
        eps = self.eps
        if eps is None and online and gradient:  # dgn: the generators' (known from the run)
            eps = attacks.default_eps(self.dataset)
        every = self.every or ("batch" if gradient or not online else "epoch")
        if self.method == "trades":  # each objective has its own weight, the other none
            alpha, beta = None, 6.0 if self.beta is None else self.beta
        else:
            alpha, beta = 0.5 if self.alpha is None else self.alpha, None
        return dataclasses.replace(
            self.with_training_defaults(), every=every, eps=eps, alpha=alpha, beta=beta
        )


def run_name(p: Params, attack: dict[str, str]) -> str:
    """What the run is called in the UI: ``advtrain fgsm α=0.5`` (static: the attack run's
    method or DGN loss), ``advtrain pgd α=0 online``, ``advtrain trades β=6``."""
    if p.method == "trades":
        return f"advtrain trades β={p.beta:g}" if p.beta is not None else "advtrain trades"
    if p.mode == "static":
        preset = attack.get("preset")  # absent (older runs: "auto") when the attack had none
        what = preset if preset not in (None, "auto") else attack.get("method", p.method)
        what = f"dgn-{attack.get('loss')}" if what == "dgn" else what
    else:
        what = p.method
    alpha = "" if p.alpha is None else f" α={p.alpha:g}"
    return f"advtrain {what}{alpha}{' online' if p.mode == 'online' else ''}"


@_params.registering
def main(p: Params) -> str:
    """Run (or reuse) the advtrain stage (with ``register``, register its model); return its
    run id."""
    p, up = p.resolved(), tracking.Lineage(p.dataset)
    needs_attack = p.mode == "static" or p.method == "dgn" or p.attack_run is not None
    attack_run = up.attack_run(p.attack_run) if needs_attack else None
    if p.mode == "static":
        up.require_adversarial(attack_run, "train")
    elif p.method == "dgn":
        up.require_method(attack_run, "dgn", "online method=dgn trains its generators further")
    model_run = up.model_run(p.model_run or (attack_run and up.source_model(attack_run)))
    if attack_run is not None:
        up.require_same_data(model_run, attack_run)
    eps = p.eps
    if p.mode == "online" and p.method == "dgn" and eps is None:
        eps = float(up.params(attack_run)["eps"])
    params = _cli.as_dict(p) | {"model_run": model_run, "attack_run": attack_run, "eps": eps}
    upstream = {"model": model_run} | ({"attack": attack_run} if attack_run else {})
    with tracking.stage(
        "advtrain", params, dataset=p.dataset, upstream=upstream, force=p.force, quiet=p.quiet,
        data=up.data_source(model_run, p.data_dir), experiment=p.experiment,
        run_name=(name := run_name(p, up.params(attack_run) if attack_run else {})),
    ) as run:  # fmt: skip
        if run.reused:
            return run.run_id
        device = str(resolve_device(p.device))
        with run.phase("load"):
            ds, source = up.model_and_data(model_run, p.data_dir, device)
            train, adversarial = ds.train, {"every": p.every}
            if p.mode == "static":
                train, adversarial = static_pairs(ds.train, up.adversarial(attack_run, "train"))
                adversarial = {"x_adv": adversarial}
            elif p.method == "dgn":
                gens = up.generators(attack_run, device)
                gens.eps = eps
                adversarial["attack"] = dgn_attack(
                    gens, epochs=p.dgn_epochs, route=up.params(attack_run).get("route", "label"),
                    seed=p.seed, on_train=lambda call, c, e, loss: run.log_metrics(
                        {f"dgn/class{c}_loss": loss}, step=(call - 1) * p.dgn_epochs + e),
                )  # fmt: skip
            elif p.method == "trades":
                adversarial["attack"] = trades_attack(eps, p.steps, p.step_size, seed=p.seed)
                adversarial |= {"objective": "trades", "beta": p.beta}
            else:
                spec = attacks.AttackSpec(
                    p.method, eps, steps=p.steps, step_size=p.step_size, seed=p.seed
                )
                adversarial["attack"] = online_attack(spec)
        run.log_splits(ds, ("train", "val", "test"), model_run)
        if p.mode == "static":
            run.log_adversarial_inputs(attack_run, {"train": len(train.y)}, ds)
        seed_everything(p.seed)
        # as the train stage, so a fresh model starts as it did
        model = source if p.start == "finetune" else models.rebuild(source, seed=p.seed)
        run.log_params(
            {"n_pairs": len(train.y), "n_val": len(ds.val), "n_test": len(ds.test),
             "n_parameters": sum(t.numel() for t in model.parameters())}
        )  # fmt: skip
        with run.phase("fit"):
            t0 = time.perf_counter()
            adversarial_fit(
                model, train, ds.val, **adversarial, alpha=p.alpha, epochs=p.epochs, lr=p.lr,
                batch_size=p.batch_size, optimizer=p.optimizer, seed=p.seed, device=device,
                progress=not p.quiet, on_epoch=run.log_epoch,
            )  # fmt: skip
            fit_s = time.perf_counter() - t0
        run.log_metrics({"train/samples_per_s": len(train.y) * p.epochs / fit_s})
        transfer = None
        with run.phase("evaluate"):
            test = report_test_set(model, ds.test, ds.classes, run.outdir / "confusion")
            run.log_metrics(test)
            if attack_run and "test" in up.splits(attack_run):
                adv = up.adversarial(attack_run, "test")
                run.log_adversarial_inputs(attack_run, {"test": len(adv["y"])}, ds)
                transfer = attack_report(model, ds.test.x[adv["index"]], adv["x"], adv["y"])
                keys = {"adversarial_accuracy": "accuracy", "clean_accuracy": "clean_accuracy",
                        "success_rate": "success_rate"}  # fmt: skip
                run.log_metrics({f"transfer/{k}": transfer[v] for k, v in keys.items()})
        run.log_artifacts(run.outdir / "confusion", "confusion")
        with run.phase("save"):
            run.log_model(model, ds, name)
        source_line = f"from {tracking.notes.run_link(model_run)}" + (
            f" with the adversarial inputs of {tracking.notes.run_link(attack_run)}"
            if attack_run else ""
        )  # fmt: skip
        run.describe(
            f"**{name}**: {p.mode} adversarial training ({p.start} start, {p.epochs} epochs) "
            f"{source_line}.",
            f"Clean test accuracy **{percent(test['test/accuracy'])}**"
            + (
                f"; on the attack run's adversarial test inputs (crafted against the original) "
                f"**{percent(transfer['accuracy'])}**." if transfer else "."
            )
            + " Robust accuracy under adaptive attacks is `evaluate`'s.",
        )  # fmt: skip
        return run.run_id


if __name__ == "__main__":
    _cli.entry(main, Params)
