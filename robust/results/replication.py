"""Replicating seed 000: a study's retraining curves against the seed's published curves.

Seed 000 (guided retraining) published one accuracy curve per dataset, configuration and
guidance metric: accuracy on the clean + adversarial test sets combined (our
``accuracy_combined``) against the number of retraining inputs, one unseeded run per point.
Those curves, read back from the seed's ``reports/*.svg`` (code notes §6), ship with the package
as ``robust/results/data/guided_retraining_reference_curves.csv`` in the seed's own names
(datasets ``cifar``, …; metrics ``LSA``, ``DG``, ``SE``, …); :func:`reference_curves` returns
them in ours (:data:`DATASET_NAMES`, :data:`METRIC_NAMES`).

:func:`compare_to_seed` puts a study's curves next to them, for the same dataset and
configuration: per metric and budget, our mean over seeds with its 95 % t-interval, the seed's
value and the difference (:data:`DIFFERENCE_COLUMNS`), the mean absolute difference per metric
(:data:`SUMMARY_COLUMNS`), and a figure overlaying ours (solid, interval band) on the seed's
(dashed). Budgets are matched in one of two ways (:data:`MATCHES`):

* ``size``: the same number of inputs. Right when the study used the seed's own sets
  (``-P budgets=seed`` on the seed's pool size); a budget the seed has no point at compares
  with nothing (NaN).
* ``fraction``: the same fraction of the pool; the seed's curve is interpolated linearly in the
  fraction of its own pool (the largest set of that dataset and configuration), never
  extrapolated. Right whenever pool sizes or step sizes differ (``budgets=auto``).

``auto`` picks ``size`` when every budget of the study is one of the seed's sizes, else
``fraction``. In ``c1`` the seed's step 0 is a placeholder accuracy of 0 (its plots start
from 0), not a measured model, and is left out of the reference; in ``c2``/``c3`` step 0 is
the original model in both studies.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robust.errors import ConfigError, DataError
from robust.results._query import retraining_curves
from robust.retraining import CONFIGS, STYLES, save_figure
from robust.tracking import lineage

DATASET_NAMES: dict[str, str] = {
    "gtsrb": "gtsrb",
    "intel": "intel",
    "cifar": "cifar10",
    "mnist": "mnist",
    "fashion": "fashion",
}
"""Seed 000's dataset name → ours (:data:`robust.data.DATASETS`); digits has no reference."""

METRIC_NAMES: dict[str, str] = {
    "NC": "nc",
    "LSA": "lsa",
    "DSA": "dsa",
    "DG": "deepgini",
    "SE": "entropy",
    "Random": "random",
}
"""Seed 000's metric name → ours (:data:`robust.guidance.METRICS`)."""

REFERENCE_DATASETS: tuple[str, ...] = tuple(DATASET_NAMES.values())
"""Our datasets that have reference curves."""

MATCHES: tuple[str, ...] = ("auto", "size", "fraction")
"""How :func:`compare_to_seed` matches budgets (see the module docstring)."""

REFERENCE_COLUMNS: tuple[str, ...] = (
    "dataset",
    "config",
    "metric",
    "step",
    "n_inputs",
    "fraction",
    "accuracy_combined",
)
"""The columns of :func:`reference_curves`, in order."""

DIFFERENCE_COLUMNS: tuple[str, ...] = (
    "metric",
    "step",
    "n_inputs",
    "fraction",
    "n_seeds",
    "mean",
    "ci_low",
    "ci_high",
    "seed_n_inputs",
    "seed_accuracy",
    "difference",
    "seed_in_ci",
)
"""The columns of :attr:`Replication.differences`, in order."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "metric",
    "n_budgets",
    "mean_difference",
    "mean_abs_difference",
    "max_abs_difference",
    "seed_in_ci_share",
)
"""The columns of :attr:`Replication.summary`, in order."""

DATA_FILE = "data/guided_retraining_reference_curves.csv"
"""The packaged reference curves, relative to the ``robust.results`` package."""

_QUANTITY = "accuracy_combined"
_REQUIRED = ("metric", "n_inputs", _QUANTITY)


@functools.cache
def _raw_reference() -> pd.DataFrame:
    """The packaged CSV as published (seed names), read once per process."""
    source = resources.files("robust.results").joinpath(DATA_FILE)
    with source.open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


def reference_curves(dataset: str | None = None, config: str | None = None) -> pd.DataFrame:
    """Seed 000's published accuracy curves, in our dataset and metric names.

    Args:
        dataset: one of :data:`REFERENCE_DATASETS`; None: every dataset.
        config: ``c1``, ``c2`` or ``c3``; None: every configuration.

    Returns:
        One row per (dataset, config, metric, step), with the columns of
        :data:`REFERENCE_COLUMNS`: ``step`` (0 = before retraining), ``n_inputs`` (the seed's
        set size), ``fraction`` (of the seed's pool: its largest set for that dataset and
        config) and ``accuracy_combined`` (the seed's ``accuracy_test_plus_adv``: clean +
        adversarial test sets combined). The ``c1`` step-0 placeholder (accuracy 0) is left
        out.

    Raises:
        ConfigError: a dataset without reference curves or an unknown config.

    Example:
        >>> ref = reference_curves("mnist", "c2").set_index(["metric", "n_inputs"])
        >>> float(ref.accuracy_combined["deepgini", 14000])
        0.9923
    """
    if dataset is not None:
        _check_dataset(dataset)
    if config is not None and config not in CONFIGS:
        raise ConfigError(f"config must be one of {', '.join(CONFIGS)}, but got {config=}")
    ref = _raw_reference().rename(columns={"accuracy_test_plus_adv": _QUANTITY})
    ref = ref.assign(dataset=ref.dataset.map(DATASET_NAMES), metric=ref.metric.map(METRIC_NAMES))
    pool = ref.groupby(["dataset", "config"]).n_inputs.transform("max")
    ref = ref.assign(fraction=ref.n_inputs / pool)
    ref = ref[~((ref.config == "c1") & (ref.step == 0))]  # a placeholder, not a model
    if dataset is not None:
        ref = ref[ref.dataset == dataset]
    if config is not None:
        ref = ref[ref.config == config]
    return ref.reindex(columns=list(REFERENCE_COLUMNS)).reset_index(drop=True)


@dataclass(frozen=True)
class Replication:
    """A study's curves next to seed 000's, for one dataset and configuration.

    Attributes:
        dataset, config: what was compared.
        match: ``size`` or ``fraction``, how budgets were matched (module docstring).
        curves: ours, one row per (metric, seed, step) (with several originals, per
            (metric, original, step), the original's mean over its seeds): ``metric``,
            ``seed``, ``step``, ``n_inputs``, ``fraction``, ``accuracy_combined``.
        reference: the seed's (:func:`reference_curves`), for our metrics only.
        differences: per (metric, budget of ours), :data:`DIFFERENCE_COLUMNS`: ``n_seeds``,
            ``mean``, ``ci_low``, ``ci_high`` (ours over seeds, t-interval at
            ``confidence``; NaN bounds with one seed), ``seed_n_inputs`` (the seed's budget
            at the same size or fraction), ``seed_accuracy`` (NaN where the seed has no
            point), ``difference`` (ours − seed), ``seed_in_ci`` (the seed's value lies in
            our interval; NA without either).
        summary: per metric, :data:`SUMMARY_COLUMNS` over the budgets compared: their
            number, the mean difference (ours − seed), the mean and the largest absolute
            difference, and the share whose seed value lies in our interval.
        confidence: of the intervals.
        source: the run id the curves came from, or None.
    """

    dataset: str
    config: str
    match: str
    curves: pd.DataFrame
    reference: pd.DataFrame
    differences: pd.DataFrame
    summary: pd.DataFrame
    confidence: float = 0.95
    source: str | None = None

    @property
    def x(self) -> str:
        """The x column of the overlay: ``n_inputs`` (size matching) or ``fraction``."""
        return "n_inputs" if self.match == "size" else "fraction"

    def figure(self) -> Any:
        """The overlay as a matplotlib ``Figure``: one panel per metric, ours solid (mean over
        seeds, band: the interval), the seed's dashed, in the retrain report's colours."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        metrics = list(self.summary.metric)
        cols = min(3, len(metrics))
        rows = -(-len(metrics) // cols)
        fig = Figure(figsize=(4.2 * cols, 3.4 * rows + 0.6), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
        n_seeds = int(self.differences.n_seeds.max())
        band = f", band {self.confidence:.0%} CI over {n_seeds} seeds" if n_seeds > 1 else ""
        mad = self.summary.set_index("metric").mean_abs_difference
        for ax, metric in zip(axes, metrics, strict=False):
            label, colour, _ = STYLES.get(metric, (metric, None, "-"))
            ours = self.differences[self.differences.metric == metric]
            seed = self.reference[self.reference.metric == metric]
            (line,) = ax.plot(
                ours[self.x], ours["mean"], "-", color=colour, label=f"this study (mean{band})"
            )
            if n_seeds > 1:
                ax.fill_between(
                    ours[self.x], ours.ci_low, ours.ci_high, color=line.get_color(),
                    alpha=0.12, lw=0,
                )  # fmt: skip
            ax.plot(
                seed[self.x], seed[_QUANTITY], "--", color=line.get_color(), alpha=0.8,
                label="seed 000 (one run)",
            )  # fmt: skip
            ax.set_title(f"{label}: mean |Δ| {mad[metric]:.4f}")
            ax.grid(alpha=0.3)
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        xlabel = "Number of inputs" if self.match == "size" else "Fraction of the pool"
        fig.supxlabel(xlabel)
        fig.supylabel("accuracy combined (clean + adversarial test)")
        fig.suptitle(f"Seed 000 replication: {self.dataset}, {self.config}")
        axes[0].legend(fontsize="small")
        return fig

    def plot(self, path: str | os.PathLike[str]) -> list[Path]:
        """Write :meth:`figure` as ``<path>.png`` and ``<path>.svg`` (any suffix replaced,
        folders created); return both paths."""
        return save_figure(self.figure(), path)

    def write(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write the figure (``replication_<dataset>_<config>.png``/``.svg``) and the tables
        (``…_differences.csv``, ``…_summary.csv``) into ``directory``; return the paths."""
        stem = Path(directory) / f"replication_{self.dataset}_{self.config}"
        out = self.plot(stem)
        for name, frame in (("differences", self.differences), ("summary", self.summary)):
            path = stem.with_name(f"{stem.name}_{name}.csv")
            frame.to_csv(path, index=False)
            out.append(path)
        return out


def compare_to_seed(
    study: str | os.PathLike[str] | pd.DataFrame,
    dataset: str | None = None,
    config: str | None = None,
    *,
    match: str = "auto",
    confidence: float = 0.95,
) -> Replication:
    """Compare a study's retraining curves with seed 000's for the same dataset and config.

    Args:
        study: a retrain run id (or a parent ``main`` run id with retrain children; read with
            :func:`robust.results.retraining_curves`), a path to a ``tables/curves.csv``, or
            such a table as a DataFrame. It needs columns ``metric`` (ours or the seed's
            names), ``n_inputs`` and ``accuracy_combined``; ``seed`` (default: one seed),
            ``step`` (default: numbered from ``n_inputs``), ``fraction`` (default:
            ``n_inputs`` over its largest value, the whole pool) and ``config`` are used when
            present.
        dataset: one of :data:`REFERENCE_DATASETS`; None: the run's ``robust.dataset`` tag
            (a table needs it).
        config: ``c1``, ``c2`` or ``c3``; None: the table's one ``config``.
        match: ``auto``, ``size`` or ``fraction`` (:data:`MATCHES`, module docstring).
        confidence: of our intervals over seeds, in (0, 1).

    Returns:
        A :class:`Replication` (tables, figure).

    Raises:
        ConfigError: a dataset without reference curves (digits), an unknown config or
            match, no dataset or config to go by, a table missing a column or with an
            unknown metric, or an unknown run id.

    Example:
        >>> rep = compare_to_seed(run_id)  # doctest: +SKIP
        >>> rep.summary  # mean |ours − seed| per metric  # doctest: +SKIP
        >>> rep.write("replication/")  # figure + tables  # doctest: +SKIP
    """
    if match not in MATCHES:
        raise ConfigError(f"match must be one of {', '.join(MATCHES)}, but got {match=}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), but got {confidence=}")
    source = None
    if isinstance(study, pd.DataFrame):
        table = study
    elif isinstance(study, str):
        table, run_dataset = _run_curves(study)
        source, dataset = study, dataset or run_dataset
    else:
        table = pd.read_csv(study)
    if dataset is None:
        raise ConfigError(
            "dataset must be given for a curves table (one of "
            f"{', '.join(REFERENCE_DATASETS)}), but got dataset=None"
        )
    _check_dataset(dataset)
    curves, config = _our_curves(table, config)
    reference = reference_curves(dataset, config)
    reference = reference[reference.metric.isin(curves.metric.unique())].reset_index(drop=True)
    if match == "auto":
        sizes = set(reference.n_inputs.tolist()) | {0}
        match = "size" if curves.n_inputs.isin(sizes).all() else "fraction"
    differences = _differences(curves, reference, match, confidence)
    return Replication(
        dataset=dataset,
        config=config,
        match=match,
        curves=curves,
        reference=reference,
        differences=differences,
        summary=_summary(differences),
        confidence=confidence,
        source=source,
    )


# ---- helpers -----------------------------------------------------------------------------
def _check_dataset(dataset: str) -> None:
    if dataset not in REFERENCE_DATASETS:
        raise ConfigError(
            f"dataset must be one of {', '.join(REFERENCE_DATASETS)} (seed 000's datasets, "
            f"the only ones with reference curves), but got {dataset=}"
        )


def _run_curves(run_id: str) -> tuple[pd.DataFrame, str | None]:
    """A retrain (or parent) run's curves and its dataset tag."""
    run = lineage.Lineage().run(run_id)
    dataset = run.data.tags.get("robust.dataset") or lineage.params_of(run).get("dataset")
    return retraining_curves(run_id), dataset


def _our_curves(table: pd.DataFrame, config: str | None) -> tuple[pd.DataFrame, str]:
    """The table reduced to one config, in our metric names, with seed, step and fraction."""
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise ConfigError(
            f"a curves table must have columns {', '.join(_REQUIRED)}, but it lacks "
            f"{', '.join(missing)}"
        )
    if config is not None and config not in CONFIGS:
        raise ConfigError(f"config must be one of {', '.join(CONFIGS)}, but got {config=}")
    if "config" in table.columns:
        found = sorted(table.config.dropna().unique().tolist())
        if config is None:
            if len(found) != 1:
                raise ConfigError(
                    f"config must be given when the curves hold {len(found)} configurations "
                    f"({', '.join(found) or 'none'}), but got config=None"
                )
            config = found[0]
        elif config not in found:
            raise ConfigError(
                f"config must be one the curves hold ({', '.join(found)}), but got {config=}"
            )
        table = table[table.config == config]
    elif config is None:
        raise ConfigError(
            "config must be given for a curves table without a config column "
            f"(one of {', '.join(CONFIGS)}), but got config=None"
        )
    ours = set(METRIC_NAMES.values())
    metric = table.metric.replace(METRIC_NAMES)
    unknown = sorted(set(metric) - ours)
    if unknown:
        raise ConfigError(
            f"metrics must be among {', '.join(METRIC_NAMES.values())} (or the seed's "
            f"{', '.join(METRIC_NAMES)}), but got {', '.join(map(str, unknown))}"
        )
    out = pd.DataFrame(
        {
            "metric": metric,
            "seed": table["seed"] if "seed" in table.columns else 0,
            "n_inputs": table.n_inputs.astype("int64"),
            _QUANTITY: table[_QUANTITY].astype("float64"),
        }
    )
    if not np.isfinite(out[_QUANTITY]).all():
        raise DataError("accuracy_combined must be finite in every row of the curves table")
    pool = out.n_inputs.max()
    out["fraction"] = table["fraction"] if "fraction" in table.columns else out.n_inputs / pool
    if "step" in table.columns:
        out["step"] = table["step"].astype("int64")
    else:  # 0 is the original model (n_inputs 0); the sets count from 1
        ranks = out.n_inputs.rank(method="dense").astype("int64")
        out["step"] = ranks - int((out.n_inputs == 0).any())
    columns = ["metric", "seed", "step", "n_inputs", "fraction", _QUANTITY]
    if "original" in table.columns and table["original"].nunique() > 1:
        # several originals: each one's mean over its seeds is the unit (as the retrain
        # report's intervals), so "seed" then numbers the originals
        out["seed"] = table["original"].astype("int64")
        out = out.groupby(columns[:-1], as_index=False, sort=False)[_QUANTITY].mean()
    out = out[columns].sort_values(["metric", "seed", "step"], key=_metric_order)
    return out.reset_index(drop=True), config


def _metric_order(column: pd.Series) -> pd.Series:
    """A sort key putting metrics in :data:`METRIC_NAMES` order (other columns as they are)."""
    if column.name != "metric":
        return column
    return column.map({m: i for i, m in enumerate(METRIC_NAMES.values())})


def _differences(
    curves: pd.DataFrame, reference: pd.DataFrame, match: str, confidence: float
) -> pd.DataFrame:
    """Per (metric, budget): ours over seeds with a t-interval, the seed's value, the gap."""
    from scipy import stats

    keys = ["metric", "step", "n_inputs"]
    agg = (
        curves.groupby(keys, sort=False)
        .agg(
            fraction=("fraction", "mean"),
            n_seeds=(_QUANTITY, "size"),
            mean=(_QUANTITY, "mean"),
            sd=(_QUANTITY, "std"),
        )
        .reset_index()
        .sort_values(["metric", "step", "n_inputs"], key=_metric_order, ignore_index=True)
    )
    n = agg.n_seeds.to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(n > 1, stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)), np.nan)
        half = t * agg.sd.to_numpy() / np.sqrt(n)
    agg["ci_low"], agg["ci_high"] = agg["mean"] - half, agg["mean"] + half
    if match == "size":
        seed = reference[["metric", "n_inputs", _QUANTITY]].rename(
            columns={_QUANTITY: "seed_accuracy"}
        )
        agg = agg.merge(seed, on=["metric", "n_inputs"], how="left", validate="many_to_one")
        agg["seed_n_inputs"] = agg.n_inputs.astype("float64")
    else:
        pool = float(reference.n_inputs.max())
        agg["seed_n_inputs"] = agg.fraction * pool
        agg["seed_accuracy"] = np.nan
        for metric, ref in reference.groupby("metric"):  # one interpolation per metric
            rows = agg.metric == metric
            agg.loc[rows, "seed_accuracy"] = np.interp(
                agg.loc[rows, "fraction"], ref.fraction, ref[_QUANTITY], left=np.nan, right=np.nan
            )
    agg["difference"] = agg["mean"] - agg.seed_accuracy
    inside = (agg.ci_low <= agg.seed_accuracy) & (agg.seed_accuracy <= agg.ci_high)
    known = agg.ci_low.notna() & agg.seed_accuracy.notna()
    agg["seed_in_ci"] = inside.astype("boolean").where(known, pd.NA)
    return agg.reindex(columns=list(DIFFERENCE_COLUMNS))


def _summary(differences: pd.DataFrame) -> pd.DataFrame:
    """Per metric over the budgets with a seed value: count, mean, mean |·| and max |·| of the
    difference, share of seed values inside our interval."""
    compared = differences.assign(abs_difference=differences.difference.abs())
    out = (
        compared.groupby("metric", sort=False)
        .agg(
            n_budgets=("difference", "count"),
            mean_difference=("difference", "mean"),
            mean_abs_difference=("abs_difference", "mean"),
            max_abs_difference=("abs_difference", "max"),
            seed_in_ci_share=("seed_in_ci", lambda s: s.dropna().astype(float).mean()),
        )
        .reset_index()
    )
    return out.reindex(columns=list(SUMMARY_COLUMNS))
