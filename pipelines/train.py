"""Train a target model on a dataset and log it with everything the stage run records.

Inputs: a dataset (files under ``data_dir``; ``digits`` is bundled). Params: see ``Params``.
Metrics: ``train/loss``, ``train/accuracy``, ``val/loss``, ``val/accuracy`` per epoch
(step = epoch); ``test/accuracy``, ``test/loss``, ``test/precision_macro``,
``test/recall_macro``, ``test/f1_macro``; ``train/samples_per_s``; plus the stage run's
``time/*``, ``energy/*``, ``process/*`` and system metrics.
Artifacts: ``model/`` (safetensors + spec.json, what ``robust.models.load(run_id)`` reads),
``mlflow_model/`` (for ``mlflow models predict``), ``confusion/confusion.png`` and ``.csv``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from pipelines import _cli
from robust import data, models, tracking
from robust.evaluation import confusion_csv, evaluate, plot_confusion
from robust.training import OPTIMIZERS, defaults_for, fit
from robust.utils import DEVICES, seed_everything


@dataclass(frozen=True)
class Params:
    dataset: str = "digits"
    """Dataset name: digits (bundled), mnist, fashion, cifar10, gtsrb or intel."""
    model: str | None = None
    """Architecture from the zoo; auto picks the dataset's default."""
    epochs: int | None = None
    """Training epochs; auto uses the dataset's default (seed 000's protocol)."""
    lr: float | None = None
    """Learning rate; auto uses the dataset's default."""
    batch_size: int | None = None
    """Mini-batch size; auto uses the dataset's default."""
    optimizer: str | None = None
    """rmsprop, adam or sgd; auto uses the dataset's default."""
    seed: int = 0
    """Seed of the split, the initial weights and the shuffling."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    data_dir: str | None = None
    """Directory holding the dataset files; auto uses $ROBUST_DATA, else ./data."""
    size: int | None = None
    """Resize images to size x size; auto keeps the native size."""
    grayscale: bool = False
    """Convert images to one channel."""
    preset: str | None = None
    """guided_retraining reproduces seed 000's preprocessing and split; auto: none."""
    force: bool = False
    """Recompute even if an identical FINISHED run exists."""
    quiet: bool = False
    """No progress bars."""

    def __post_init__(self) -> None:
        _cli.check_choice("dataset", self.dataset, data.DATASETS)
        if self.model is not None:
            _cli.check_choice("model", self.model, models.MODELS)
        if self.optimizer is not None:
            _cli.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _cli.check_choice("device", self.device, DEVICES)
        _cli.check_min("epochs", self.epochs, 1)
        _cli.check_min("batch_size", self.batch_size, 1)
        _cli.check_min("lr", self.lr, 0, strict=True)
        _cli.check_min("size", self.size, 1)

    def resolved(self) -> Params:
        """These parameters with every ``auto`` replaced by the dataset's default."""
        d = defaults_for(self.dataset)
        return dataclasses.replace(
            self,
            model=self.model or models.default_model(self.dataset),
            epochs=self.epochs or d.epochs,
            lr=self.lr or d.lr,
            batch_size=self.batch_size or d.batch_size,
            optimizer=self.optimizer or d.optimizer,
        )


def main(p: Params, *, force: bool | None = None) -> str:
    """Run (or reuse) the train stage; return its run id."""
    p = p.resolved()
    force = p.force if force is None else force
    with tracking.stage(
        "train", _cli.as_dict(p), dataset=p.dataset, force=force, quiet=p.quiet
    ) as run:
        if run.reused:
            return run.run_id
        seed_everything(p.seed)
        with run.phase("load"):
            ds = data.load(
                p.dataset,
                p.data_dir,
                seed=p.seed,
                size=p.size,
                grayscale=p.grayscale,
                preset=p.preset,
            )
        model = models.build(p.model, ds.input_shape, ds.num_classes)
        run.log_params(
            {
                "n_train": len(ds.train),
                "n_val": len(ds.val),
                "n_test": len(ds.test),
                "n_parameters": sum(t.numel() for t in model.parameters()),
            }
        )
        with run.phase("fit"):
            t0 = time.perf_counter()
            fit(
                model,
                ds.train,
                ds.val,
                epochs=p.epochs,
                lr=p.lr,
                batch_size=p.batch_size,
                optimizer=p.optimizer,
                seed=p.seed,
                device=p.device,
                progress=not p.quiet,
                on_epoch=lambda epoch, m: run.log_metrics(_namespaced(m), step=epoch),
            )
            fit_s = time.perf_counter() - t0
        run.log_metrics({"train/samples_per_s": len(ds.train) * p.epochs / fit_s})
        with run.phase("evaluate"):
            report = evaluate(model, ds.test, ds.num_classes)
        run.log_metrics(
            {
                f"test/{k}": report[k]
                for k in ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro")
            }
        )
        plot_confusion(report["confusion"], ds.classes, run.outdir / "confusion.png")
        confusion_csv(report["confusion"], ds.classes, run.outdir / "confusion.csv")
        run.log_artifact(run.outdir / "confusion.png", "confusion")
        run.log_artifact(run.outdir / "confusion.csv", "confusion")
        with run.phase("save"):
            run.log_model(
                model, dataset=ds.name, classes=ds.classes, input_example=ds.test.x[:4].numpy()
            )
        return run.run_id


def _namespaced(epoch_metrics: dict[str, float]) -> dict[str, float]:
    """``train_loss`` → ``train/loss`` (CleanRL-style namespaced keys)."""
    return {k.replace("_", "/", 1): v for k, v in epoch_metrics.items()}


if __name__ == "__main__":
    _cli.entry(main, Params)
