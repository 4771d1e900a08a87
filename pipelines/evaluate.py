"""Robust-accuracy matrices of model runs against attack runs: transfer and adaptive.

Inputs: ``model_runs`` (train or advtrain runs; auto: the newest FINISHED train run on
``dataset``, the *original*, then every FINISHED advtrain run of it, oldest first) and
``attack_runs`` (attack runs with an adversarial test set; auto: every FINISHED one crafted on
the original model, oldest first). The original is the first model run's train run; the clean
test split is its dataset's.
Matrices (rows: model runs; cells: top-1 accuracy in [0, 1]): *transfer*, columns ``clean``
and each attack run's adversarial test set, all crafted once on the original model (seed 004's
evaluation); *adaptive* (``adaptive=true``), columns ``clean``, ``fgsm`` and ``pgd`` crafted
on the clean test split against each row's model itself.
Labels: rows ``train-<id8>``, ``advtrain-<attack>-<id8>`` (static: the attack run's method;
online: ``online-<method>``); columns ``<method>[-l<norm>]-<id8>``
(``dgn-<loss>-<id8>``, ``guided_retraining-<id8>``), ``<id8>`` the run id's first 8 characters.
Metrics: ``transfer/<row>/<column>`` and ``adaptive/<row>/<column>`` per cell; phases ``load``,
``transfer`` and ``adaptive`` (``time/<phase>_s``, ``energy/<phase>_kwh``).
Artifacts: ``matrix/transfer.csv``, ``matrix/transfer.png``, ``matrix/adaptive.csv``,
``matrix/adaptive.png``, ``matrix/labels.json`` (each label's run id, stage and params; the
adaptive attacks' settings). Tags ``robust.upstream.model`` (the original),
``robust.upstream.model.<row>`` and ``robust.upstream.attack.<column>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines import _cli, _params
from robust import attacks, tracking
from robust.errors import ConfigError
from robust.evaluation import adaptive_matrix, transfer_matrix, write_matrix
from robust.tracking import labels
from robust.utils import resolve_device


@dataclass(frozen=True)
class Params(_params.Common):
    model_runs: tuple[str, ...] | None = None
    """Comma-separated train/advtrain run ids (rows); auto: the newest train run and its
    advtrain runs."""
    attack_runs: tuple[str, ...] | None = None
    """Comma-separated attack run ids (transfer columns); auto: every one crafted on the
    original model's test split."""
    adaptive: bool = True
    """Also craft FGSM and PGD against each model itself (the adaptive matrix)."""
    eps: float | None = None
    """Adaptive attacks' L∞ budget; auto: 0.3 for digits/mnist/fashion, 8/255 otherwise."""
    steps: int = 20
    """Adaptive PGD's iterations."""
    step_size: float | None = None
    """Adaptive PGD's absolute step; auto: 2.5 * eps / steps."""
    batch_size: int | None = None
    """Inputs per pass; auto: 1024 for predictions, the attacks' automatic size."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("model_runs", "attack_runs"):
            if getattr(self, name) == ():
                raise ConfigError(f"{name} must name at least one run id or be auto")
        if self.eps is not None:
            attacks.check_eps(self.eps)
        _cli.check_min("step_size", self.step_size, 0, strict=True)
        _cli.check_min("steps", self.steps, 1)
        _cli.check_min("batch_size", self.batch_size, 1)


def main(p: Params) -> str:
    """Run (or reuse) the evaluate stage; return its run id."""
    up = tracking.Lineage(p.dataset)
    model_runs = up.matrix_rows(p.model_runs)
    original = up.train_run_of(model_runs[0])
    attack_runs = up.matrix_columns(p.attack_runs, original)
    eps = p.eps if p.eps is not None else attacks.default_eps(p.dataset)
    specs = {
        "fgsm": attacks.AttackSpec("fgsm", eps),
        "pgd": attacks.AttackSpec("pgd", eps, steps=p.steps, step_size=p.step_size, seed=p.seed),
    }
    rows = {labels.model_label(up, run_id): run_id for run_id in model_runs}
    cols = {labels.attack_label(up, run_id): run_id for run_id in attack_runs}
    params = _cli.as_dict(p) | {"model_runs": model_runs, "attack_runs": attack_runs, "eps": eps}
    upstream = (
        {"model": original}
        | {f"model.{label}": run_id for label, run_id in rows.items()}
        | {f"attack.{label}": run_id for label, run_id in cols.items()}
    )
    with tracking.stage(
        "evaluate", params, dataset=p.dataset, upstream=upstream, force=p.force, quiet=p.quiet,
        data=up.data_source(original, p.data_dir),
    ) as run:  # fmt: skip
        if run.reused:
            return run.run_id
        device = str(resolve_device(p.device))
        with run.phase("load"):
            test = up.dataset_of(original, p.data_dir).test
            models = {label: up.model(run_id, device) for label, run_id in rows.items()}
            adv = {label: up.adversarial(run_id, "test") for label, run_id in cols.items()}
            sets = {"clean": (test.x, test.y)} | {k: (a["x"], a["y"]) for k, a in adv.items()}
        matrices = {}
        with run.phase("transfer"):
            matrices["transfer"] = transfer_matrix(models, sets, batch_size=p.batch_size or 1024)
        if p.adaptive:
            with run.phase("adaptive"):
                matrices["adaptive"] = adaptive_matrix(
                    models, test.x, test.y, specs, batch_size=p.batch_size
                )
        for name, matrix in matrices.items():
            title = f"{name} robust accuracy (%), {p.dataset}"
            run.log_metrics(write_matrix(matrix, run.outdir / "matrix", name, title=title))
        run.log_artifacts(run.outdir / "matrix", "matrix")
        sizes = {label: len(x) for label, (x, _) in sets.items()}
        adaptive = {k: s.describe() for k, s in specs.items()} if p.adaptive else {}
        info = labels.matrix_labels(up, original, rows, cols, sizes, adaptive)
        run.log_dict(info, "matrix/labels.json")
        return run.run_id


if __name__ == "__main__":
    _cli.entry(main, Params)
