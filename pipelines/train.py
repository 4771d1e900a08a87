"""Train a target model on a dataset and log it with everything the stage run records.

Inputs: a dataset (files under ``data_dir``; ``digits`` is bundled). Params: see ``Params``.
Metrics: ``train/loss``, ``train/accuracy``, ``val/loss``, ``val/accuracy`` per epoch
(step = epoch); ``test/accuracy``, ``test/loss``, ``test/precision_macro``,
``test/recall_macro``, ``test/f1_macro``; ``train/samples_per_s``; plus the stage run's
``time/*``, ``energy/*``, ``process/*`` and system metrics.
Artifacts: ``model/`` (safetensors + spec.json, what ``robust.results.load_model(run_id)``
reads), the MLflow model ``train-<model>`` (for ``mlflow models predict``/``serve`` and the
registry; tag ``robust.mlflow_model``), ``confusion/confusion.png`` and ``.csv``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from pipelines import _cli, _params
from robust import data, models, tracking
from robust.evaluation import report_test_set
from robust.tracking.notes import percent
from robust.training import fit
from robust.utils import seed_everything


@dataclass(frozen=True)
class Params(_params.Registering, _params.Training):
    model: str | None = None
    """Architecture from the zoo; auto picks the dataset's default."""
    size: int | None = None
    """Resize images to size x size; auto keeps the native size."""
    grayscale: bool = False
    """Convert images to one channel."""
    preset: str | None = None
    """guided_retraining reproduces seed 000's preprocessing and split; auto: none."""
    init_seed: int | None = None
    """Seed of the initial weights, the shuffling and dropout; auto: seed (which also fixes
    the split). Another value trains an independent original on the same split (what
    ``main -P originals=K`` does)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model is not None:
            _cli.check_choice("model", self.model, models.MODELS)
        _cli.check_min("size", self.size, 1)
        _cli.check_min("init_seed", self.init_seed, 0)

    def resolved(self) -> Params:
        """These parameters with every ``auto`` replaced by the dataset's default."""
        model = self.model or models.default_model(self.dataset)
        init_seed = self.seed if self.init_seed is None else self.init_seed
        return dataclasses.replace(self.with_training_defaults(), model=model, init_seed=init_seed)


def run_name(p: Params) -> str:
    """What the run is called in the UI: ``train <model>`` (and its init seed when not the
    split's)."""
    extra = f" init_seed={p.init_seed}" if p.init_seed != p.seed else ""
    return f"train {p.model}{extra}"


@_params.registering
def main(p: Params, *, force: bool | None = None) -> str:
    """Run (or reuse) the train stage (with ``register``, register its model); return its
    run id."""
    p = p.resolved()
    force = p.force if force is None else force
    with tracking.stage(
        "train", _cli.as_dict(p), dataset=p.dataset, force=force, quiet=p.quiet,
        data=(p.dataset, p.data_dir), experiment=p.experiment, run_name=run_name(p),
    ) as run:  # fmt: skip
        if run.reused:
            return run.run_id
        seed_everything(p.init_seed)
        with run.phase("load"):
            ds = data.load(
                p.dataset, p.data_dir, seed=p.seed, size=p.size, grayscale=p.grayscale,
                preset=p.preset,
            )  # fmt: skip
        run.log_splits(ds, ("train", "val", "test"), run.run_id)
        model = models.build(p.model, ds.input_shape, ds.num_classes, seed=p.init_seed)
        run.log_params(
            {"n_train": len(ds.train), "n_val": len(ds.val), "n_test": len(ds.test),
             "n_parameters": sum(t.numel() for t in model.parameters())}
        )  # fmt: skip
        with run.phase("fit"):
            t0 = time.perf_counter()
            fit(
                model, ds.train, ds.val, epochs=p.epochs, lr=p.lr, batch_size=p.batch_size,
                optimizer=p.optimizer, seed=p.init_seed, device=p.device, progress=not p.quiet,
                on_epoch=run.log_epoch,
            )  # fmt: skip
            fit_s = time.perf_counter() - t0
        run.log_metrics({"train/samples_per_s": len(ds.train) * p.epochs / fit_s})
        with run.phase("evaluate"):
            test = report_test_set(model, ds.test, ds.classes, run.outdir / "confusion")
            run.log_metrics(test)
        run.log_artifacts(run.outdir / "confusion", "confusion")
        with run.phase("save"):
            run.log_model(model, ds, run_name(p))
        run.describe(
            f"**{run_name(p)}** on {p.dataset}: {len(ds.train)} training, {len(ds.val)} "
            f"validation and {len(ds.test)} test inputs; {p.epochs} epochs of {p.optimizer} "
            f"(lr {p.lr:g}, batch {p.batch_size}).",
            f"Test accuracy **{percent(test['test/accuracy'])}** (macro F1 "
            f"{test['test/f1_macro']:.3f}).",
        )
        return run.run_id


if __name__ == "__main__":
    _cli.entry(main, Params)
