"""Robust-accuracy matrices of every model of a study: transfer and adaptive (AutoAttack-grade),
with counts, Wilson intervals, per-class breakdowns, ε-curves and gradient-masking checks.

Rows: ``model_runs`` (train or advtrain runs; auto: the newest FINISHED train run on
``dataset``, the *original*, then every FINISHED advtrain run of it, oldest first) and the best
models of ``retrain_runs`` (``best/<metric>/`` of each). Transfer columns: ``attack_runs``
(attack runs with an adversarial test set; auto: every FINISHED one crafted on the original,
oldest first). The clean test split is the original's dataset's.
Matrices (cells: top-1 accuracy in [0, 1] over the n inputs of the column's test set):
*transfer*, columns ``clean`` and each attack run's adversarial test set, all crafted once on the
original model (seed 004's evaluation); *adaptive* (``adaptive`` not none), columns ``clean``,
each attack of ``adaptive`` crafted on the clean test split against each row's model itself,
each DGN attack run's generators trained ``dgn_epochs`` more against the row's model
(``adaptive <label>``), and ``worst case``: the inputs no adaptive attack fooled.
Labels are the runs' names (robust.tracking.labels): rows ``train digits_cnn``, ``advtrain
fgsm α=0.5``, ``retrain c2 lsa`` (a retrain run's best model of one metric); transfer columns
the attack run's name without ``attack`` (``fgsm ε=0.3``, ``dgn-nce``); a name two runs share
gets the run id's first 8 characters (``train digits_cnn (1a2b3c4d)``).
Metrics (no run ids in any key; every cell is in the tables): ``transfer/<column>/original``
and ``adaptive/<column>/original`` (the original's accuracy), ``…/<column>/best`` (the best
row's), ``<column>`` the column's kind (``clean``, ``fgsm``, ``fgsm-l2``, ``dgn-nce``, ``pgd``,
``autoattack``, ``adaptive-dgn-nce``, ``worst_case``; a repeated one gets ``_2``, …);
``eps_curve/original`` and ``eps_curve/best`` (step = round(1000·ε)); phases ``load``,
``transfer``, ``adaptive``, ``curve``, ``masking`` (``time/<phase>_s``, ``energy/<phase>_kwh``).
Artifacts: ``matrix/<kind>.csv`` and ``.png`` (each cell's accuracy and interval),
``matrix/<kind>_cells.csv`` (row, column, correct, n, accuracy, ci_low, ci_high),
``matrix/per_class.csv``/``.png``/``_cells.csv`` and ``matrix/confusion/<row>.csv``/``.png``
(under the worst case; ``<row>`` the label as a file name, ``advtrain-fgsm-alpha-0_5``),
``matrix/eps_curve.csv``/``.png``, ``matrix/masking.csv``, ``matrix/labels.json`` (each
label's run, the attacks' settings, each column's kind), ``summary.md``. Tags
``robust.upstream.model`` (the original), ``robust.upstream.model.<k>``,
``robust.upstream.attack.<k>``, ``robust.upstream.retrain.<k>`` (k = 1, 2, … in row and
column order; ``matrix/labels.json`` maps each label to its run) and ``robust.masking`` (the
flagged checks per row, or ``none flagged``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import _cli, _params
from robust import attacks, tracking
from robust.errors import ConfigError
from robust.evaluation import (
    ADAPTIVE,
    Adaptive,
    AdaptiveDGN,
    confusion_csv,
    eps_curve,
    evaluate_adaptive,
    interval_table,
    masking_checks,
    plot_confusion,
    plot_eps_curve,
    transfer_matrix,
    write_matrix,
)
from robust.tracking import labels
from robust.tracking.notes import percent
from robust.utils import markdown_table, resolve_device

log = logging.getLogger("pipelines.evaluate")


@dataclass(frozen=True)
class Params(_params.Common):
    model_runs: tuple[str, ...] | None = None
    """Comma-separated train/advtrain run ids (rows); auto: the newest train run and its
    advtrain runs."""
    retrain_runs: tuple[str, ...] | None = None
    """Comma-separated retrain run ids whose best models (one per metric) are rows too; auto:
    none."""
    attack_runs: tuple[str, ...] | None = None
    """Comma-separated attack run ids (transfer columns); auto: every one crafted on the
    original model's test split."""
    adaptive: tuple[str, ...] = ("autoattack",)
    """Attacks crafted against each model itself, comma-separated of fgsm, pgd, apgd-ce,
    apgd-t, fab-t, square, autoattack (AutoAttack's standard ensemble), autoattack-rand (its
    version for randomised models: APGD-CE and APGD-DLR, 20 draws per step); none: no
    adaptive matrix."""
    eps: tuple[float, ...] | None = None
    """Budget(s) in norm: the first is the matrices'; with more, each model's ε-curve under
    curve_attack; auto: 0.3 for digits/mnist/fashion, 8/255 otherwise (L∞), 1.5 (L2)."""
    norm: str = "inf"
    """Norm of the adaptive attacks: inf or 2."""
    steps: int = 20
    """PGD's iterations (seed 004's evaluation: 20)."""
    apgd_steps: int = 100
    """Iterations of apgd-ce, apgd-t, fab-t and AutoAttack's APGD and FAB (AutoAttack's 100)."""
    restarts: int = 1
    """Restarts of pgd and apgd-ce (AutoAttack's ensemble keeps its own)."""
    n_queries: int = 5000
    """Square's queries per input (AutoAttack's 5000)."""
    curve_attack: str = "apgd-ce"
    """Attack of the ε-curve's points (one of adaptive's choices); apgd-ce, as AutoAttack at
    every ε and model costs many times the matrix."""
    dgn_epochs: int = 10
    """Adaptive DGN: epochs each DGN attack run's generators train further against each row's
    model (a column per DGN attack run); 0: no DGN column."""
    masking: bool = True
    """Run the gradient-masking checks on every row (robust.evaluation.masking_checks)."""
    masking_inputs: int = 200
    """Test inputs the masking checks use (the first ones)."""
    batch_size: int | None = None
    """Inputs per pass; auto: 1024 for predictions, the attacks' automatic size."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("model_runs", "attack_runs", "retrain_runs", "eps"):
            if getattr(self, name) == ():
                what = "budget" if name == "eps" else "run id"
                raise ConfigError(f"{name} must name at least one {what} or be auto")
        object.__setattr__(self, "norm", attacks.check_norm(self.norm))
        _cli.check_choice("norm", self.norm, ("inf", "2"))
        if self.adaptive in (("none",), ("false",)):
            object.__setattr__(self, "adaptive", ())
        for a in self.adaptive:
            _cli.check_choice("adaptive", a, (*ADAPTIVE, "none"))
        if len(set(self.adaptive)) != len(self.adaptive):
            raise ConfigError(f"adaptive must not repeat, but got {','.join(self.adaptive)}")
        _cli.check_choice("curve_attack", self.curve_attack, ADAPTIVE)
        for e in self.eps or ():
            attacks.check_eps(e, self.norm)
        _cli.check_min("steps", self.steps, 1)
        _cli.check_min("apgd_steps", self.apgd_steps, 1)
        _cli.check_min("restarts", self.restarts, 1)
        _cli.check_min("n_queries", self.n_queries, 1)
        _cli.check_min("dgn_epochs", self.dgn_epochs, 0)
        _cli.check_min("masking_inputs", self.masking_inputs, 1)
        _cli.check_min("batch_size", self.batch_size, 1)

    def budgets(self) -> tuple[float, ...]:
        """``eps`` with auto resolved: the dataset's L∞ default, or 1.5 in L2."""
        if self.eps is not None:
            return self.eps
        return (attacks.default_eps(self.dataset) if self.norm == "inf" else 1.5,)

    def attack(self, name: str, eps: float) -> Adaptive:
        """The adaptive attack ``name`` at ``eps`` with these settings."""
        steps = self.steps if name == "pgd" else self.apgd_steps
        return Adaptive(name, eps, self.norm, steps=steps, restarts=self.restarts,
                        n_queries=self.n_queries, seed=self.seed)  # fmt: skip


def _rows(up: tracking.Lineage, p: Params) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """The model runs, every row's label → run id, and each retrain row's (run, metric)."""
    model_runs = up.matrix_rows(p.model_runs)
    named = [(labels.model_label(up, run_id), run_id, "") for run_id in model_runs]
    data = up.data_params(model_runs[0])
    for given in p.retrain_runs or ():
        run_id = up.retrain_run(given)
        source = up.tag(run_id, "robust.upstream.model")
        if up.data_params(source) != data:
            raise ConfigError(
                f"retrain_runs must retrain on the original's data, but run {run_id} retrained "
                f"model {source}, trained on another split or input size than {model_runs[0]}"
            )
        named += [
            (f"{labels.model_label(up, run_id)} {metric}", run_id, metric)
            for metric in up.best_models(run_id)
        ]
    unique = labels.unique([label for label, _, _ in named], [r for _, r, _ in named])
    rows = {label: run_id for label, (_, run_id, _) in zip(unique, named, strict=True)}
    best = {  # a retrain row: which best model of its run
        label: (run_id, metric)
        for label, (_, run_id, metric) in zip(unique, named, strict=True)
        if metric
    }
    return model_runs, rows, best


def _columns(
    up: tracking.Lineage, attack_runs: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The transfer columns: label → attack run id, and label → kind."""
    unique = labels.unique([labels.attack_label(up, r) for r in attack_runs], attack_runs)
    return dict(zip(unique, attack_runs, strict=True)), {
        label: labels.column_kind(up, run_id)
        for label, run_id in zip(unique, attack_runs, strict=True)
    }


def main(p: Params) -> str:
    """Run (or reuse) the evaluate stage; return its run id."""
    up = tracking.Lineage(p.dataset)
    model_runs, rows, best = _rows(up, p)
    original = up.train_run_of(model_runs[0])
    attack_runs = up.matrix_columns(p.attack_runs, original)
    cols, kinds = _columns(up, attack_runs)
    budgets = p.budgets()
    eps = budgets[0]
    dgn_runs = {
        f"adaptive {label}": run_id
        for label, run_id in cols.items()
        if p.dgn_epochs and p.adaptive and up.params(run_id).get("method") == "dgn"
    }
    kinds = (  # each column's metric key part (labels.json keeps them)
        {"clean": "clean"} | kinds | {name: name for name in p.adaptive or ()}
        | {label: f"adaptive-{kinds[label.removeprefix('adaptive ')]}" for label in dgn_runs}
        | {"worst case": "worst_case"}
    )  # fmt: skip
    params = _cli.as_dict(p) | {
        "model_runs": model_runs, "attack_runs": attack_runs, "eps": budgets,
        "retrain_runs": tuple(dict.fromkeys(r for r, _ in best.values())) or None,
    }  # fmt: skip
    plain = [run_id for label, run_id in rows.items() if label not in best]
    retrained = list(dict.fromkeys(run_id for run_id, _ in best.values()))
    upstream = (  # stable names: no run ids in tag keys
        {"model": original}
        | {f"model.{k}": run_id for k, run_id in enumerate(plain, 1)}
        | {f"attack.{k}": run_id for k, run_id in enumerate(cols.values(), 1)}
        | {f"retrain.{k}": run_id for k, run_id in enumerate(retrained, 1)}
    )
    with tracking.stage(
        "evaluate", params, dataset=p.dataset, upstream=upstream, force=p.force, quiet=p.quiet,
        data=up.data_source(original, p.data_dir), experiment=p.experiment, run_name="evaluate",
    ) as run:  # fmt: skip
        if run.reused:
            return run.run_id
        device = str(resolve_device(p.device))
        out = run.outdir / "matrix"
        with run.phase("load"):
            ds = up.dataset_of(original, p.data_dir)
            test = ds.test
            models = {
                label: up.best_model(*best[label], device)
                if label in best
                else up.model(r, device)
                for label, r in rows.items()
            }
            adv = {label: up.adversarial(run_id, "test") for label, run_id in cols.items()}
            sets = {"clean": (test.x, test.y)} | {k: (a["x"], a["y"]) for k, a in adv.items()}
            run.log_splits(ds, ("test",), original)
            for label, run_id in cols.items():
                run.log_adversarial_inputs(run_id, {"test": len(adv[label]["y"])}, ds)
        sizes = {label: len(x) for label, (x, _) in sets.items()}
        with run.phase("transfer"):
            matrix = transfer_matrix(models, sets, batch_size=p.batch_size or 1024)
            title = f"transfer robust accuracy (%), {p.dataset}"
            write_matrix(matrix, out, "transfer", title=title, n=sizes)
            run.log_metrics(_key_metrics(matrix, "transfer", kinds))
        described: dict[str, Any] = {}
        if p.adaptive:
            crafters = {name: p.attack(name, eps) for name in p.adaptive}
            crafters |= _adaptive_dgn(up, dgn_runs, ds, eps, p, device)
            described = {k: c.describe() for k, c in crafters.items()}
            with run.phase("adaptive"), _bar(len(models) * len(crafters), p.quiet) as bar:
                result = evaluate_adaptive(
                    models, test.x, test.y, crafters, batch_size=p.batch_size,
                    progress=lambda row, col: bar.update(1),
                )  # fmt: skip
                title = f"adaptive robust accuracy (%), {p.dataset}, ε = {eps:g} ({_norm(p)})"
                n = dict.fromkeys(result.matrix.columns, result.n)
                write_matrix(result.matrix, out, "adaptive", title=title, n=n)
                run.log_metrics(_key_metrics(result.matrix, "adaptive", kinds))
                _write_breakdowns(result, ds.classes, out, p.dataset)
        if len(budgets) > 1:
            with run.phase("curve"), _bar(len(models) * (len(budgets)), p.quiet) as bar:
                name = p.curve_attack
                curve = eps_curve(
                    models, test.x, test.y, lambda e: {name: p.attack(name, e)}, budgets,
                    batch_size=p.batch_size, progress=lambda row, col: bar.update(1),
                )  # fmt: skip
                curve.to_csv(out / "eps_curve.csv", index=False)
                what = f"{p.curve_attack}, {_norm(p)}, Wilson 95 % bands"
                plot_eps_curve(
                    curve, out / "eps_curve.png", title=f"robust accuracy vs ε ({what})"
                )
                by_eps = curve.pivot(index="eps", columns="model", values="accuracy")
                by_eps = by_eps[list(dict.fromkeys(curve["model"]))]  # rows' order: original
                for e, acc in by_eps.iterrows():
                    run.log_metrics(
                        {"eps_curve/original": acc.iloc[0], "eps_curve/best": acc.max()},
                        step=round(1000 * e),
                    )
        flags: dict[str, list[str]] = {}
        if p.masking:
            with run.phase("masking"):
                flags = _masking(models, test.x[: p.masking_inputs], test.y[: p.masking_inputs],
                                 eps, p, out)  # fmt: skip
            run.set_tags({"robust.masking": _flag_text(flags)})
        run.log_artifacts(out, "matrix")
        info = labels.matrix_labels(up, original, rows, cols, sizes, described, kinds)
        for label, (_, metric) in best.items():  # which best model of the retrain run
            info["rows"][label]["metric"] = metric
        run.log_dict(info, "matrix/labels.json")
        run.log_text(_summary(out, p, eps, flags), "summary.md")
        run.describe(*_description(out, rows, cols, p, eps, flags))
        return run.run_id


def _norm(p: Params) -> str:
    """The norm as a person writes it: ``L∞``, ``L2``, ``L1``."""
    return "L∞" if p.norm == "inf" else f"L{p.norm}"


def _bar(total: int, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="evaluate", unit="cell", disable=quiet or None, leave=False)


def _adaptive_dgn(up, dgn_runs: dict[str, str], ds, eps: float, p: Params, device: str):
    """An :class:`AdaptiveDGN` per DGN attack run whose generators share the matrix's budget
    (L∞, ε); the others are left out with a warning."""
    out = {}
    for label, run_id in dgn_runs.items():
        gens = up.generators(run_id, device)
        if p.norm != "inf" or abs(gens.eps - eps) > 1e-9:
            log.warning("adaptive DGN: %s left out (its generators clip at L∞ ε = %g, the "
                        "matrix is at L%s ε = %g)", label, gens.eps, p.norm, eps)  # fmt: skip
            continue
        split = getattr(ds, up.params(run_id).get("dgn_split", "train"))
        route = up.params(run_id).get("route", "label")
        out[label] = AdaptiveDGN(gens, split.x, split.y, epochs=p.dgn_epochs, route=route,
                                 seed=p.seed)  # fmt: skip
    return out


def _write_breakdowns(result, classes, out: Path, dataset: str) -> None:
    """Per-class robust accuracy (with intervals) and one confusion matrix per row, both under
    the worst case."""
    per_class = result.per_class.rename(columns=lambda c: classes[c] if c < len(classes) else c)
    sizes = dict(zip(per_class.columns, result.class_sizes.tolist(), strict=True))
    title = f"robust accuracy per class (%), worst case, {dataset}"
    write_matrix(per_class, out, "per_class", title=title, n=sizes)
    for row, conf in result.confusion.items():
        names = [str(c) for c in classes] + [str(c) for c in range(len(classes), len(conf))]
        confusion_csv(conf, names, out / "confusion" / f"{labels.slug(row)}.csv")
        plot_confusion(conf, names, out / "confusion" / f"{labels.slug(row)}.png")


def _masking(models, x, y, eps: float, p: Params, out: Path) -> dict[str, list[str]]:
    """Run the masking checks on every row; write ``masking.csv``; return each row's flags."""
    import pandas as pd

    records, flags = [], {}
    for row, model in models.items():
        checks = masking_checks(model, x, y, eps, p.norm, seed=p.seed)
        records += [{"model": row} | vars(c) for c in checks]
        flags[row] = [c.name for c in checks if c.flagged]
        for c in checks:
            if c.flagged:
                log.warning("masking check %s flags %s: %s", c.name, row, c.message)
    pd.DataFrame(records).to_csv(out / "masking.csv", index=False)
    return flags


def _flag_text(flags: dict[str, list[str]]) -> str:
    text = "; ".join(f"{row}: {', '.join(f)}" for row, f in flags.items() if f)
    return (text or "none flagged")[:5000]


def _key_metrics(matrix, kind: str, kinds: dict[str, str]) -> dict[str, float]:
    """A matrix's metrics without run ids: per column (by its kind) the original's accuracy
    (first row) and the best row's (the cells themselves are the tables')."""
    out: dict[str, float] = {}
    for column in matrix.columns:
        name = kinds[column]
        k, base = 2, name
        while f"{kind}/{name}/original" in out:  # two columns of one kind: fgsm, fgsm_2
            name, k = f"{base}_{k}", k + 1
        out[f"{kind}/{name}/original"] = float(matrix[column].iloc[0])
        out[f"{kind}/{name}/best"] = float(matrix[column].max())
    return out


def _description(
    out: Path, rows: dict[str, str], cols: dict[str, str], p: Params, eps: float,
    flags: dict[str, list[str]],
) -> list[str]:  # fmt: skip
    """The run's description: what was evaluated, the most robust row under the strongest
    evaluation with its interval, the adaptive matrix and the masking verdict."""
    import pandas as pd

    kind = "adaptive" if (out / "adaptive_cells.csv").exists() else "transfer"
    cells = pd.read_csv(out / f"{kind}_cells.csv")
    strongest = cells["test set"].iloc[-1]  # the worst case (or the only / last column)
    under = cells[cells["test set"] == strongest]
    top = under.loc[under["accuracy"].idxmax()]
    parts = [
        f"**evaluate** on {p.dataset}: {len(rows)} models × "
        + (f"adaptive attacks {', '.join(p.adaptive)}" if kind == "adaptive" else "")
        + (" and " if kind == "adaptive" and cols else "")
        + (f"{len(cols)} transfer attack sets" if cols else "")
        + f", {_norm(p)} ε = {eps:g}.",
        f"Most robust under *{strongest}*: **{top['model']}**, {percent(top['accuracy'])} "
        f"[{percent(top['ci_low'])}, {percent(top['ci_high'])}] (Wilson 95 %, over "
        f"{int(top['n'])} test inputs).",
        markdown_table(interval_table(cells)),
    ]
    if flags:
        parts.append(f"Gradient-masking checks: {_flag_text(flags)}.")
    return parts


def _summary(out: Path, p: Params, eps: float, flags: dict[str, list[str]]) -> str:
    """``summary.md``: the matrices with intervals and the masking checks, for people."""
    import pandas as pd

    lines = [f"# Robustness evaluation on {p.dataset}", ""]
    for kind in ("transfer", "adaptive", "per_class"):
        if (path := out / f"{kind}_cells.csv").exists():
            title = f"## {kind.replace('_', ' ')} accuracy (%) [Wilson 95 % interval]"
            lines += [title, "", markdown_table(interval_table(pd.read_csv(path))), ""]
    if (out / "masking.csv").exists():
        checks = pd.read_csv(out / "masking.csv").round(3)
        checks["flagged"] = checks["flagged"].map({True: "**FLAG**", False: "ok"})
        lines += [f"## Gradient-masking checks (ε = {eps:g}, first {p.masking_inputs} inputs)", ""]
        lines += [markdown_table(checks), "", f"Flagged: {_flag_text(flags)}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    _cli.entry(main, Params)
