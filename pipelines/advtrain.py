"""Adversarially train a model: α·CE(clean) + (1 − α)·CE(adversarial), static or online.

Inputs: ``model_run`` (a train or advtrain run: the architecture, the dataset and, with
``start=finetune``, the starting weights) and ``attack_run`` (static: its
``adversarial/train.safetensors``, each input paired with ``train.x[index]``, so a preset's
subset trains on those pairs only; online dgn: its ``generators/``, trained further every
epoch; with its adversarial test set, if it has one, the trained model's transfer accuracy).
Params: see ``Params``; seed 004 is ``mode=static alpha=0.5 start=fresh``.
Metrics: per epoch (step = epoch) ``train/loss`` (the mixed objective), ``train/accuracy``
(clean), ``train/clean_loss``, ``train/adversarial_loss``, ``train/adversarial_accuracy``,
``val/loss``, ``val/accuracy``, online also ``train/attack_s``, online dgn also
``dgn/class<c>_loss`` (step = DGN epochs so far); ``test/accuracy``, ``test/loss``,
``test/precision_macro``, ``test/recall_macro``, ``test/f1_macro``; ``transfer/accuracy``,
``transfer/clean_accuracy``, ``transfer/success_rate`` (on the attack run's adversarial test
set); ``train/samples_per_s``; the stage run's ``time/*``, ``energy/*``, ``process/*``.
Artifacts: as ``train``: ``model/``, ``mlflow_model/``, ``confusion/`` (so ``attack``,
``metric`` and ``evaluate`` take ``model_run=<this run>``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from pipelines import _cli, _upstream
from pipelines.train import _namespaced
from robust import data, models, tracking
from robust.attacks import dgn
from robust.errors import ConfigError, DataError
from robust.evaluation import attack_report, confusion_csv, evaluate, plot_confusion
from robust.training import (
    EVERY,
    OPTIMIZERS,
    adversarial_fit,
    defaults_for,
    dgn_attack,
    fgsm_attack,
    pgd_attack,
)
from robust.utils import DEVICES, resolve_device, seed_everything

MODES = ("static", "online")
METHODS = ("fgsm", "pgd", "dgn")
STARTS = ("fresh", "finetune")
_DATA_PARAMS = ("dataset", "seed", "size", "grayscale", "preset")


@dataclass(frozen=True)
class Params:
    dataset: str = "digits"
    """Dataset of the model (used to find the newest runs when model_run/attack_run are auto)."""
    model_run: str | None = None
    """Train or advtrain run: architecture, data, finetune weights; auto: attack_run's model,
    else the newest FINISHED train run on dataset."""
    attack_run: str | None = None
    """Attack run: static pairs / online dgn generators / transfer test set; auto: the newest
    FINISHED one on dataset (static, online dgn), none (online fgsm, pgd)."""
    mode: str = "static"
    """static: the attack run's adversarial training set (seed 004); online: regenerated
    against the model being trained."""
    method: str = "pgd"
    """online: fgsm, pgd or dgn (the attack run's generators, trained further each epoch)."""
    every: str | None = None
    """online: regenerate for every batch or for the training set every epoch; auto: batch
    (fgsm, pgd), epoch (dgn, the only one it allows)."""
    alpha: float = 0.5
    """Weight α of the clean term in [0, 1] (seed 004: 0.5); 1 is clean training."""
    eps: float | None = None
    """online: budget; auto: the generators' (dgn), else 0.3 for digits/mnist/fashion, 8/255."""
    steps: int = 10
    """online pgd: iterations per batch (each one forward and backward pass)."""
    step_size: float | None = None
    """online pgd: absolute step; auto: 2.5 * eps / steps."""
    dgn_epochs: int = 5
    """online dgn: epochs the generators train against the current model before each epoch."""
    start: str = "fresh"
    """fresh: new weights with model_run's architecture (seed 004); finetune: model_run's."""
    epochs: int | None = None
    """Training epochs; auto: the dataset's default (as train)."""
    lr: float | None = None
    """Learning rate; auto: the dataset's default."""
    batch_size: int | None = None
    """Mini-batch size; auto: the dataset's default."""
    optimizer: str | None = None
    """rmsprop, adam or sgd; auto: the dataset's default."""
    seed: int = 0
    """Seed of the fresh weights, the shuffling, dropout and the PGD random starts."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    data_dir: str | None = None
    """Dataset directory; auto: the train run's."""
    force: bool = False
    """Recompute even if an identical FINISHED run exists."""
    quiet: bool = False
    """No progress bars."""

    def __post_init__(self) -> None:
        _cli.check_choice("dataset", self.dataset, data.DATASETS)
        _cli.check_choice("mode", self.mode, MODES)
        _cli.check_choice("method", self.method, METHODS)
        if self.every is not None:
            _cli.check_choice("every", self.every, EVERY)
        _cli.check_choice("start", self.start, STARTS)
        if self.optimizer is not None:
            _cli.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _cli.check_choice("device", self.device, DEVICES)
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1], but got alpha={self.alpha}")
        if self.mode == "online" and self.method == "dgn" and self.every == "batch":
            raise ConfigError(
                "method=dgn trains the generators, then regenerates the training set, once per "
                "epoch: every must be epoch (or auto), but got every=batch"
            )
        _cli.check_min("eps", self.eps, 0)
        _cli.check_min("step_size", self.step_size, 0, strict=True)
        _cli.check_min("lr", self.lr, 0, strict=True)
        for name in ("steps", "dgn_epochs", "epochs", "batch_size"):
            _cli.check_min(name, getattr(self, name), 1)

    def resolved(self) -> Params:
        """These parameters with every training ``auto`` replaced by the dataset's default."""
        d = defaults_for(self.dataset)
        online, gradient = self.mode == "online", self.method in ("fgsm", "pgd")
        eps = self.eps
        if eps is None and online and gradient:  # dgn: the generators' (known from the run)
            eps = dgn.EPS.get(self.dataset, 8 / 255)
        return dataclasses.replace(
            self,
            every=self.every or ("batch" if gradient or not online else "epoch"),
            eps=eps,
            epochs=self.epochs or d.epochs,
            lr=self.lr or d.lr,
            batch_size=self.batch_size or d.batch_size,
            optimizer=self.optimizer or d.optimizer,
        )


def main(p: Params) -> str:
    """Run (or reuse) the advtrain stage; return its run id."""
    p = p.resolved()
    model_run, attack_run = _runs(p)
    eps = p.eps
    if p.mode == "online" and p.method == "dgn" and eps is None:
        eps = float(tracking.params_of(tracking.get_run(attack_run, stage="attack"))["eps"])
    params = _cli.as_dict(p) | {"model_run": model_run, "attack_run": attack_run, "eps": eps}
    upstream = {"model": model_run} | ({"attack": attack_run} if attack_run else {})
    with tracking.stage(
        "advtrain", params, dataset=p.dataset, upstream=upstream, force=p.force, quiet=p.quiet
    ) as run:
        if run.reused:
            return run.run_id
        device = str(resolve_device(p.device))
        with run.phase("load"):
            ds = _upstream.dataset_of(model_run, p.data_dir)
            source = _upstream.model_of(model_run, device)
            train, adversarial = _adversarial_source(p, attack_run, ds, eps, run, device)
        seed_everything(p.seed)  # as the train stage, so a fresh model starts as it did
        spec = source.spec
        model = (
            source
            if p.start == "finetune"
            else models.build(spec["architecture"], spec["input_shape"], spec["num_classes"])
        )
        run.log_params(
            {
                "n_pairs": len(train.y),
                "n_val": len(ds.val),
                "n_test": len(ds.test),
                "n_parameters": sum(t.numel() for t in model.parameters()),
            }
        )
        with run.phase("fit"):
            t0 = time.perf_counter()
            adversarial_fit(
                model,
                train,
                ds.val,
                **adversarial,
                alpha=p.alpha,
                epochs=p.epochs,
                lr=p.lr,
                batch_size=p.batch_size,
                optimizer=p.optimizer,
                seed=p.seed,
                device=device,
                progress=not p.quiet,
                on_epoch=lambda epoch, m: run.log_metrics(_namespaced(m), step=epoch),
            )
            fit_s = time.perf_counter() - t0
        run.log_metrics({"train/samples_per_s": len(train.y) * p.epochs / fit_s})
        with run.phase("evaluate"):
            report = evaluate(model, ds.test, ds.num_classes)
            keys = ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro")
            run.log_metrics({f"test/{k}": report[k] for k in keys})
            if attack_run and "test" in _upstream.attacked_splits(attack_run):
                adv = _upstream.adversarial_set(attack_run, "test")
                transfer = attack_report(model, ds.test.x[adv["index"]], adv["x"], adv["y"])
                keys = ("accuracy", "clean_accuracy", "success_rate")
                run.log_metrics({f"transfer/{k}": transfer[k] for k in keys})
        plot_confusion(report["confusion"], ds.classes, run.outdir / "confusion.png")
        confusion_csv(report["confusion"], ds.classes, run.outdir / "confusion.csv")
        run.log_artifact(run.outdir / "confusion.png", "confusion")
        run.log_artifact(run.outdir / "confusion.csv", "confusion")
        with run.phase("save"):
            run.log_model(
                model, dataset=ds.name, classes=ds.classes, input_example=ds.test.x[:4].numpy()
            )
        return run.run_id


def _runs(p: Params) -> tuple[str, str | None]:
    """The model run and the attack run (None when online fgsm/pgd is given none), checked."""
    needs_attack = p.mode == "static" or p.method == "dgn"
    attack_run = None
    if needs_attack or p.attack_run is not None:
        attack_run = _upstream.attack_run(p.attack_run, p.dataset)
    if p.mode == "static":
        _upstream.require_adversarial(attack_run, "train")
    elif p.method == "dgn":
        method = tracking.params_of(tracking.get_run(attack_run, stage="attack")).get("method")
        if method != "dgn":
            raise ConfigError(
                f"online method=dgn trains the generators of a method=dgn attack run further, "
                f"but attack_run {attack_run} has method={method}; pass a dgn attack run"
            )
    if p.model_run is None and attack_run is not None:
        model_run = _upstream.model_run(_upstream.model_of_attack(attack_run), p.dataset)
    else:
        model_run = _upstream.model_run(p.model_run, p.dataset)
    if attack_run is not None:
        ours = _data_params(model_run)
        theirs = _data_params(_upstream.model_of_attack(attack_run))
        if ours != theirs:
            diff = ", ".join(f"{k}={ours[k]} vs {theirs[k]}" for k in ours if ours[k] != theirs[k])
            raise ConfigError(
                f"model_run {model_run} and attack_run {attack_run} must use the same data "
                f"(the same split, so that the adversarial inputs pair with it), but {diff}"
            )
    return model_run, attack_run


def _data_params(model_run: str) -> dict[str, str]:
    """What fixes the split of a model run's dataset (its train run's params)."""
    params = tracking.params_of(tracking.get_run(_upstream.train_run_of(model_run), stage="train"))
    return {k: params.get(k, "auto") for k in _DATA_PARAMS}


def _adversarial_source(
    p: Params, attack_run: str | None, ds: data.Dataset, eps: float | None, run, device: str
) -> tuple[data.Split, dict]:
    """The clean training inputs and ``adversarial_fit``'s keyword arguments for their
    adversarial counterparts: static ``x_adv`` (paired by index), or an online attack."""
    if p.mode == "static":
        adv = _upstream.adversarial_set(attack_run, "train")
        pairs = data.Split(x=ds.train.x[adv["index"]], y=ds.train.y[adv["index"]])
        if not (adv["y"] == pairs.y).all():
            raise DataError(
                f"attack run {attack_run}'s adversarial train labels must match the train "
                "split's at their index, but they differ: it attacked other data"
            )
        return pairs, {"x_adv": adv["x"]}
    if p.method == "fgsm":
        attack = fgsm_attack(eps)
    elif p.method == "pgd":
        attack = pgd_attack(eps, p.steps, p.step_size, seed=p.seed)
    else:
        gens = dgn.load(tracking.download_artifacts(attack_run, "generators"), device)
        gens.eps = eps
        route = tracking.params_of(tracking.get_run(attack_run, stage="attack")).get(
            "route", "label"
        )
        attack = dgn_attack(
            gens,
            epochs=p.dgn_epochs,
            route=route,
            seed=p.seed,
            on_train=lambda call, c, e, loss: run.log_metrics(
                {f"dgn/class{c}_loss": loss}, step=(call - 1) * p.dgn_epochs + e
            ),
        )
    return ds.train, {"attack": attack, "every": p.every}


if __name__ == "__main__":
    _cli.entry(main, Params)
