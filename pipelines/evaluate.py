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

import logging
import re
from dataclasses import dataclass

from pipelines import _cli, _upstream
from robust import data, tracking
from robust.attacks import dgn
from robust.errors import ConfigError
from robust.evaluation import AttackSpec, adaptive_matrix, plot_matrix, transfer_matrix
from robust.utils import DEVICES, resolve_device

log = logging.getLogger("pipelines.evaluate")  # not __main__ under python -m
SAME_INPUTS = ("size", "grayscale", "preset")
"""Train-run params every model run must share with the original (its inputs' shape)."""


@dataclass(frozen=True)
class Params:
    dataset: str = "digits"
    """Dataset of the model and attack runs (used to find them when auto)."""
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
    seed: int = 0
    """Seed of adaptive PGD's random start."""
    batch_size: int | None = None
    """Inputs per pass; auto: 1024 for predictions, the attacks' automatic size."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    data_dir: str | None = None
    """Dataset directory; auto: the original's train run's."""
    force: bool = False
    """Recompute even if an identical FINISHED run exists."""
    quiet: bool = False
    """Less logging."""

    def __post_init__(self) -> None:
        _cli.check_choice("dataset", self.dataset, data.DATASETS)
        _cli.check_choice("device", self.device, DEVICES)
        for name in ("model_runs", "attack_runs"):
            if getattr(self, name) == ():
                raise ConfigError(f"{name} must name at least one run id or be auto")
        _cli.check_min("eps", self.eps, 0)
        _cli.check_min("step_size", self.step_size, 0, strict=True)
        _cli.check_min("steps", self.steps, 1)
        _cli.check_min("seed", self.seed, 0)
        _cli.check_min("batch_size", self.batch_size, 1)


def main(p: Params) -> str:
    """Run (or reuse) the evaluate stage; return its run id."""
    model_runs = _model_runs(p)
    original = _upstream.train_run_of(model_runs[0])
    attack_runs = _attack_runs(p, original)
    eps = p.eps if p.eps is not None else dgn.EPS.get(p.dataset, 8 / 255)
    specs = {
        "fgsm": AttackSpec("fgsm", eps),
        "pgd": AttackSpec("pgd", eps, steps=p.steps, step_size=p.step_size, seed=p.seed),
    }
    rows = {_row_label(run_id): run_id for run_id in model_runs}
    cols = {_column_label(run_id): run_id for run_id in attack_runs}
    params = _cli.as_dict(p) | {"model_runs": model_runs, "attack_runs": attack_runs, "eps": eps}
    upstream = (
        {"model": original}
        | {f"model.{label}": run_id for label, run_id in rows.items()}
        | {f"attack.{label}": run_id for label, run_id in cols.items()}
    )
    with tracking.stage(
        "evaluate", params, dataset=p.dataset, upstream=upstream, force=p.force, quiet=p.quiet
    ) as run:
        if run.reused:
            return run.run_id
        device = str(resolve_device(p.device))
        with run.phase("load"):
            test = _upstream.dataset_of(original, p.data_dir).test
            models = {label: _upstream.model_of(run_id, device) for label, run_id in rows.items()}
            sets = {"clean": (test.x, test.y)}
            for label, run_id in cols.items():
                adv = _upstream.adversarial_set(run_id, "test")
                sets[label] = (adv["x"], adv["y"])
        matrices = {}
        with run.phase("transfer"):
            matrices["transfer"] = transfer_matrix(models, sets, batch_size=p.batch_size or 1024)
        if p.adaptive:
            with run.phase("adaptive"):
                matrices["adaptive"] = adaptive_matrix(
                    models, test.x, test.y, specs, batch_size=p.batch_size
                )
        for name, matrix in matrices.items():
            run.log_metrics({f"{name}/{row}/{col}": v for (row, col), v in matrix.stack().items()})
            matrix.to_csv(run.outdir / f"{name}.csv")
            title = f"{name} robust accuracy (%), {p.dataset}"
            plot_matrix(matrix, run.outdir / f"{name}.png", title=title)
            run.log_artifact(run.outdir / f"{name}.csv", "matrix")
            run.log_artifact(run.outdir / f"{name}.png", "matrix")
        labels = {
            "original": original,
            "rows": {label: _describe(run_id) for label, run_id in rows.items()},
            "columns": {"clean": {"run_id": original, "split": "test", "n": len(test.x)}}
            | {
                label: _describe(run_id) | {"n": len(sets[label][0])}
                for label, run_id in cols.items()
            },
            "adaptive": {k: s.describe() for k, s in specs.items()} if p.adaptive else {},
        }
        run.log_dict(labels, "matrix/labels.json")
        return run.run_id


def _model_runs(p: Params) -> list[str]:
    """The rows: the given runs (checked, all on the original's inputs) or auto."""
    if p.model_runs is None:
        original = _upstream.model_run(_upstream.model_run(None, p.dataset), p.dataset)
        found = tracking.find_runs("advtrain", p.dataset, tags={"robust.upstream.model": original})
        return [original, *found]
    runs = list(dict.fromkeys(_upstream.model_run(r, p.dataset) for r in p.model_runs))
    first = tracking.params_of(tracking.get_run(_upstream.train_run_of(runs[0])))
    for run_id in runs[1:]:
        theirs = tracking.params_of(tracking.get_run(_upstream.train_run_of(run_id)))
        for key in SAME_INPUTS:
            if theirs.get(key, "auto") != first.get(key, "auto"):
                raise ConfigError(
                    f"model_runs must share the first one's inputs, but {run_id} was trained "
                    f"with {key}={theirs.get(key, 'auto')} and {runs[0]} with "
                    f"{key}={first.get(key, 'auto')}"
                )
        if theirs.get("seed") != first.get("seed"):
            log.warning(
                "model run %s was trained on the split of seed %s, not the original's %s: "
                "its test accuracies include inputs it may have trained on",
                run_id,
                theirs.get("seed"),
                first.get("seed"),
            )
    return runs


def _attack_runs(p: Params, original: str) -> list[str]:
    """The transfer columns: the given attack runs (checked) or those crafted on the original."""
    if p.attack_runs is not None:
        runs = list(dict.fromkeys(_upstream.attack_run(r, p.dataset) for r in p.attack_runs))
        for run_id in runs:
            _upstream.require_adversarial(run_id, "test")
        return runs
    found = tracking.find_runs("attack", p.dataset, tags={"robust.upstream.model": original})
    runs = [r for r in found if "test" in _splits(tracking.params_of(tracking.get_run(r)))]
    if not runs:
        raise ConfigError(
            f"no FINISHED attack run on dataset {p.dataset!r} attacked the test split of the "
            f"original model {original}; run `mlflow run . -e attack -P model_run={original} "
            "-P splits=train,test --env-manager local` first or pass attack_runs"
        )
    return runs


def _param(params: dict[str, str], key: str) -> str | None:
    """A logged param, its ``resolved.`` value (under ``mlflow run``) first; None for auto."""
    value = params.get(f"resolved.{key}", params.get(key))
    return None if value in (None, "auto") else value


def _splits(params: dict[str, str]) -> list[str]:
    return [s for s in (_param(params, "splits") or "").split(",") if s]


def _method(params: dict[str, str]) -> str | None:
    """``pgd``, ``fgsm-l2``, ``dgn-nce``, ``guided_retraining``, … from a run's params."""
    if preset := _param(params, "preset"):
        return preset
    if (method := _param(params, "method")) is None:
        return None
    if method == "dgn":
        return f"dgn-{_param(params, 'loss') or 'nce'}"
    norm = _param(params, "norm") or "inf"
    return method if norm == "inf" else f"{method}-l{norm}"


def _safe(label: str) -> str:
    """Only characters MLflow allows in metric keys and tag names."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def _row_label(run_id: str) -> str:
    run = tracking.get_run(run_id)
    stage = run.data.tags.get("robust.stage", "model")
    trained_on = _trained_on(run) if stage != "train" else None
    return _safe("-".join(filter(None, (stage, trained_on, run_id[:8]))))


def _trained_on(run) -> str | None:
    """What an advtrain run trained on: its attack run's method (static, seed 004; online dgn
    trains those generators further) or its own online fgsm/pgd, as ``online-<method>``."""
    params = tracking.params_of(run)
    online = _param(params, "mode") == "online"
    method = _param(params, "method")
    attack = run.data.tags.get("robust.upstream.attack")
    if attack and not (online and method in ("fgsm", "pgd")):
        method = _method(tracking.params_of(tracking.get_run(attack)))
    return f"online-{method}" if online and method else method


def _column_label(run_id: str) -> str:
    return _safe(
        f"{_method(tracking.params_of(tracking.get_run(run_id))) or 'attack'}-{run_id[:8]}"
    )


def _describe(run_id: str) -> dict:
    run = tracking.get_run(run_id)
    tags = run.data.tags
    return {
        "run_id": run_id,
        "stage": tags.get("robust.stage"),
        "source_model": tags.get("robust.upstream.model"),
        "params": dict(tracking.params_of(run)),
    }


if __name__ == "__main__":
    _cli.entry(main, Params)
