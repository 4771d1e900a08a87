"""The retrain stage's report: the seed-style accuracy figure, long tables and the summary.

The figure follows the seed's ``<ds>_<cfg>_accuracy.svg`` (notes §4): accuracy on the clean +
adversarial test set against the number of inputs, one line per metric in the seed's colours
and line styles, the best point marked; here each line is the mean over seeds with a band for
its 95 % CI. Two more figures, ``<figure>_clean`` and ``<figure>_adversarial``, plot the clean
and the adversarial test accuracy alone (:data:`ENDPOINTS`): a metric that trades one for the
other looks neutral on the combined curve.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from robust import models
from robust.errors import ConfigError
from robust.retraining._budgets import CONFIGS
from robust.retraining._curves import MARGIN, Curves, budget_mask, compare, summarise
from robust.retraining._inference import ALPHA
from robust.retraining._protocol import QUANTITIES, SELECTION, EvalSets
from robust.retraining._seeds import LogMetrics, Repeated
from robust.training import TrainConfig

log = logging.getLogger(__name__)

STYLES: dict[str, tuple[str, str, str]] = {
    "lsa": ("LSA", "b", "-"),
    "dsa": ("DSA", "g", ":"),
    "deepgini": ("DeepGini", "r", "--"),
    "entropy": ("Softmax entropy", "c", "--"),
    "random": ("Random", "m", "-."),
    "nc": ("NC", "k", "-."),
}
"""Metric → (label, matplotlib colour, line style), as the seed's plots."""

SUMMARY_KEYS = (
    "best_accuracy",
    "best_n_inputs",
    "auc",
    "fit_s",
    "auc_clean",
    "auc_adversarial",
)
"""The per-metric figures: best, inputs at best and AUC of combined accuracy, training time, and
the AUC of the clean and of the adversarial accuracy."""

ENDPOINTS = {
    "combined": "accuracy_combined",
    "clean": "accuracy_clean",
    "adversarial": "accuracy_adversarial",
}
"""Endpoint → the quantity it compares; each has its own AUC, comparison with random and
verdict. The summary's ``headline`` is the combined one, ``headline_<endpoint>`` the others."""

SELECTED_ON = {
    SELECTION: "validation",
    "accuracy_combined": "test (the seed's choice; optimistic, no selection set was given)",
}
"""What the best steps were chosen on, by :attr:`~robust.retraining.Curves.selection`."""

CONDITIONING = (
    "Every seed retrains from the same original model, pool and metric order; the seeds vary "
    "only the retraining's shuffling, dropout and (c1) initial weights. The intervals and tests "
    "therefore speak about this one original model and pool, not about a newly trained one."
)
"""What the intervals and tests condition on with one original model (the summary and the
study report say it)."""

CONDITIONING_ORIGINALS = (
    "The study retrains from {k} independently trained original models (train seeds), each "
    "with its own attack, pool and metric orders, {s} seeds each. The unit of every interval "
    "and test is the original: each original's mean over its seeds, then a t-interval over "
    "the {k} originals ({df} degrees of freedom), so they cover the variation between "
    "originals as well as the retraining's."
)
"""What they condition on with several originals (``{k}``, ``{s}``, ``{df}`` filled in)."""


def conditioning(curves: Curves) -> str:
    """What the intervals and tests over ``curves`` condition on, in words."""
    k = curves.n_originals
    if k == 1:
        return CONDITIONING
    return CONDITIONING_ORIGINALS.format(k=k, s=len(curves.seeds) // k, df=k - 1)


def plot_accuracy(
    curves: Mapping[str, Curves],
    path: str | Path,
    *,
    title: str,
    quantity: str = "accuracy_combined",
) -> list[Path]:
    """Write the accuracy figure as ``<path>.png`` and ``<path>.svg``.

    Args:
        curves: metric → its curves (any metric; unknown ones get matplotlib's next style).
        path: output path without suffix (any suffix is replaced); folders are created.
        title: figure title.
        quantity: the plotted quantity.

    Returns:
        The PNG and SVG paths.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, c in curves.items():
        label, colour, style = STYLES.get(name, (name, None, "-"))
        mean = c.mean(quantity)
        (line,) = ax.plot(c.n_inputs, mean, linestyle=style, color=colour, label=label)
        if len(c.seeds) > 1:
            low, high = c.ci(quantity)
            ax.fill_between(c.n_inputs, low, high, color=line.get_color(), alpha=0.12, lw=0)
        best = int(c.mean(c.selection).argmax())  # chosen on validation when there is one
        ax.plot(c.n_inputs[best], mean[best], "o", color=line.get_color())
    first = next(iter(curves.values()), None)
    n_units = 0 if first is None else len(first.units(first.values["fit_s"]))
    unit = "originals" if first is not None and first.n_originals > 1 else "seeds"
    band = f"; bands: 95 % CI over {n_units} {unit}" if n_units > 1 else ""
    ax.set(
        xlabel="Number of inputs",
        ylabel=f"{quantity.replace('_', ' ')} (mean{band})",
        title=title,
    )
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> list[Path]:
    """Write a matplotlib figure as ``<path>.png`` (120 dpi) and ``<path>.svg`` (any suffix
    replaced, folders created); return both paths."""
    stem = Path(path).with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(out[0], dpi=120)
    fig.savefig(out[1])
    return out


def curve_rows(curves: Mapping[str, Curves], pool_size: int) -> list[dict[str, Any]]:
    """The long table: one row per (metric, seed, step) with every quantity.

    Columns: metric, original, seed, step, n_inputs, fraction (of the pool), n_adversarial,
    each of
    :data:`~robust.retraining.QUANTITIES`, :data:`~robust.retraining.SELECTION` (when scored),
    fit_s.
    """
    rows = []
    for name, c in curves.items():
        first = 0 if c.n_inputs[0] else 1  # c2/c3 start at the original model, step 0
        for i, seed in enumerate(c.seeds):
            for j, k in enumerate(c.n_inputs.tolist()):
                rows.append(
                    {
                        "metric": name,
                        "original": c.originals[i] if c.originals else 0,
                        "seed": seed,
                        "step": j + 1 - first,
                        "n_inputs": k,
                        "fraction": k / pool_size,
                        "n_adversarial": int(c.values["n_adversarial"][i, j]),
                        **{
                            q: float(c.values[q][i, j])
                            for q in (*QUANTITIES, SELECTION, "fit_s")
                            if q in c.values
                        },
                    }
                )
    return rows


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows (dicts with the same keys) as a CSV file with a header; return its path."""
    if not rows:
        raise ConfigError("rows must hold at least one row to write a table")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def summary_document(
    curves: Mapping[str, Curves],
    pool_size: int,
    *,
    baseline: str = "random",
    budget: float = 0.3,
    confidence: float = 0.95,
    margin: float = MARGIN,
) -> dict[str, Any]:
    """Everything the summary says, JSON-ready.

    Returns:
        ``pool_size``, ``confidence``; ``metrics``: metric → :func:`summarise`'s intervals
        (as dicts) plus ``auc_clean`` and ``auc_adversarial`` (the AUC of those accuracies)
        and ``mean_curve_best`` (the step of the mean curve chosen on validation, or on test
        without a selection set: ``n_inputs``, and the combined test ``accuracy`` there);
        ``selected_on``: what the best steps were chosen on (:data:`SELECTED_ON`);
        ``headline``: metric → :func:`compare`'s comparison of combined accuracy (as a dict
        with its ``line``), empty when it cannot be made, and
        ``headline_clean``, ``headline_adversarial`` the same for those accuracies (each
        endpoint Holm-adjusted over this run's metrics); ``headline_note``: why not, or None;
        ``budget``, ``baseline``, ``margin`` (of the equivalence tests), ``alpha`` (of the
        verdicts), ``conditioning`` (:data:`CONDITIONING`).
    """
    doc: dict[str, Any] = {
        "pool_size": pool_size,
        "confidence": confidence,
        "baseline": baseline,
        "budget": budget,
        "margin": margin,
        "alpha": ALPHA,
        "conditioning": CONDITIONING,
        "originals": 1,
        "metrics": {},
        "headline": {},
        "headline_clean": {},
        "headline_adversarial": {},
        "headline_note": None,
        "selected_on": None,
    }
    for name, c in curves.items():
        stats = summarise(c, pool_size, confidence=confidence)
        for endpoint in ("clean", "adversarial"):
            by = summarise(c, pool_size, quantity=ENDPOINTS[endpoint], confidence=confidence)
            stats[f"auc_{endpoint}"] = by["auc"]
        best = int(c.mean(c.selection).argmax())
        doc["metrics"][name] = {k: v.as_dict() for k, v in stats.items()} | {
            "mean_curve_best": {
                "n_inputs": int(c.n_inputs[best]),
                "accuracy": float(c.mean()[best]),
            }
        }
        doc["selected_on"] = SELECTED_ON[c.selection]
        doc["conditioning"], doc["originals"] = conditioning(c), c.n_originals
    others = [m for m in curves if m != baseline]
    if baseline not in curves or not others:
        doc["headline_note"] = (
            f"no headline: it compares metrics with {baseline}, so both must be retrained"
        )
    elif not budget_mask(curves[baseline].n_inputs, pool_size, budget).any():
        doc["headline_note"] = (
            f"no headline: no budget step is within {budget:.0%} of the pool of {pool_size} "
            "inputs; use more steps"
        )
    else:
        for endpoint, quantity in ENDPOINTS.items():
            comparisons = compare(
                curves, pool_size, baseline=baseline, budget=budget, quantity=quantity,
                confidence=confidence, margin=margin,
            )  # fmt: skip
            doc[_headline_key(endpoint)] = {
                m: c.as_dict() | {"line": c.line()} for m, c in comparisons.items()
            }
    return doc


def _headline_key(endpoint: str) -> str:
    """The summary's key of an endpoint's comparisons: ``headline`` for combined."""
    return "headline" if endpoint == "combined" else f"headline_{endpoint}"


def summary_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-metric summary table: one row per metric, mean and CI bounds of each figure,
    any extra numbers the pipeline added (time, energy) and the headline comparison."""
    rows = []
    for name, m in doc["metrics"].items():
        row: dict[str, Any] = {"metric": name}
        for key in (k for k in SUMMARY_KEYS if k in m):
            row |= {f"{key}_mean": m[key]["mean"], f"{key}_ci_low": m[key]["ci_low"]}
            row[f"{key}_ci_high"] = m[key]["ci_high"]
        row |= {k: v for k, v in m.items() if not isinstance(v, dict)}
        for endpoint in ENDPOINTS:
            h = doc.get(_headline_key(endpoint), {}).get(name)
            tail = "" if endpoint == "combined" else f"_{endpoint}"
            prefix = f"vs_{doc['baseline']}{tail}"
            row |= {f"{prefix}_{k}": h.get(k) if h else None for k in _HEADLINE_FIELDS}
            row[f"verdict{tail}"] = h["verdict"] if h else None
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return [{k: r.get(k) for k in keys} for r in rows]


_HEADLINE_FIELDS = ("mean", "ci_low", "ci_high", "p_value", "p_holm", "p_tost", "p_tost_holm")
"""The numbers of a comparison in the summary table and (as ``_<field>``) the flat metrics."""


def _fmt(d: Mapping[str, Any], digits: int = 4) -> str:
    mean, low, high = d["mean"], d["ci_low"], d["ci_high"]
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"


def summary_markdown(
    doc: Mapping[str, Any], *, title: str, context: Mapping[str, Any] | None = None
) -> str:
    """The summary as Markdown: context lines, the per-metric table and the verdicts.

    Args:
        doc: from :func:`summary_document` (per-metric ``time_s`` and ``energy_kwh`` are shown
            when present).
        title: the first heading.
        context: name → value lines shown first (run ids, configuration, settings).
    """
    n = max((m["best_accuracy"]["n"] for m in doc["metrics"].values()), default=0)
    unit = (
        "original models (each the mean over its seeds)"
        if doc.get("originals", 1) > 1
        else "seeds"
    )
    ci = f"mean [95 % CI] over {n} {unit}" if n > 1 else "one seed, no CI"
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in (context or {}).items()]
    lines += [
        "",
        f"## Per metric ({ci})",
        "",
        f"Best step chosen on {doc.get('selected_on') or 'test'}; accuracies are on the test "
        "sets at that step.",
        "",
        "| metric | accuracy at best (test+adv) | inputs at best | AUC (accuracy × pool "
        "fraction) | AUC clean | AUC adversarial | mean-curve best | training time (s) | "
        "phase time (s) | energy (kWh) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in doc["metrics"].items():
        best = m["mean_curve_best"]
        phase = f"{m['time_s']:.1f}" if "time_s" in m else ""
        energy = f"{m['energy_kwh']:.3g}" if "energy_kwh" in m else ""
        lines.append(
            f"| {STYLES.get(name, (name,))[0]} | {_fmt(m['best_accuracy'])} | "
            f"{_fmt(m['best_n_inputs'], 5)} | {_fmt(m['auc'])} | "
            f"{_fmt(m['auc_clean']) if 'auc_clean' in m else ''} | "
            f"{_fmt(m['auc_adversarial']) if 'auc_adversarial' in m else ''} | "
            f"{best['accuracy']:.4f} @ {best['n_inputs']} | {_fmt(m['fit_s'], 3)} | "
            f"{phase} | {energy} |"
        )
    lines += ["", f"## Against {doc['baseline']} at ≤ {doc['budget']:.0%} of the pool", ""]
    if doc["headline_note"]:
        lines.append(doc["headline_note"])
    else:
        for endpoint, quantity in ENDPOINTS.items():
            heads = doc.get(_headline_key(endpoint), {})
            if heads:
                lines += ["", f"### {endpoint.capitalize()} test accuracy ({quantity})", ""]
                lines += [f"- {h['line']}" for h in heads.values()]
        margin = doc.get("margin", MARGIN)
        alpha = doc.get("alpha", ALPHA)
        several = doc.get("originals", 1) > 1
        lines += [
            "",
            f"Per {'original (the mean over its seeds)' if several else 'seed'}: the mean "
            "over those budgets of accuracy(metric) − accuracy("
            f"{doc['baseline']}) on the clean test split, the adversarial test set and both "
            "combined; seeds are paired (same shuffling, dropout and c1 initial weights). "
            "p: paired t-test of a zero difference; Holm: adjusted over this run's metrics, "
            "separately per endpoint; equivalence: TOST (two one-sided paired t-tests) of a "
            f"difference within ±{margin:g}, Holm-adjusted the same way. Verdicts at "
            f"α = {alpha:g} on adjusted values: beats / worse when the difference test "
            "rejects, equivalent when TOST rejects both sides, else inconclusive (no "
            "difference shown, equivalence not shown either). The CIs are per comparison, "
            "not adjusted.",
            "",
            doc.get("conditioning", CONDITIONING),
        ]
    return "\n".join(lines) + "\n"


def flat_metrics(doc: Mapping[str, Any]) -> dict[str, float]:
    """The summary as MLflow metrics.

    ``<metric>/<figure>_mean|_ci_low|_ci_high`` for each of :data:`SUMMARY_KEYS`;
    ``headline/<metric>_vs_<baseline>_<field>`` for the combined endpoint and
    ``headline/<metric>_vs_<baseline>_<endpoint>_<field>`` for ``clean`` and ``adversarial``,
    with fields ``mean``, ``ci_low``, ``ci_high``, ``p_value``, ``p_holm``, ``p_tost``,
    ``p_tost_holm``, ``verdict`` (+1 beats, −1 worse, 0 neither) and ``equivalent`` (1 when
    the verdict is equivalence, else 0). Undefined numbers (one seed) are left out.
    """
    out: dict[str, float] = {}
    for name, m in doc["metrics"].items():
        for key in SUMMARY_KEYS:
            for bound in ("mean", "ci_low", "ci_high"):
                if key in m and m[key][bound] is not None:
                    out[f"{name}/{key}_{bound}"] = m[key][bound]
    codes = {"beats": 1.0, "worse": -1.0, "equivalent": 0.0, "inconclusive": 0.0}
    for endpoint in ENDPOINTS:
        tail = "" if endpoint == "combined" else f"_{endpoint}"
        for name, h in doc.get(_headline_key(endpoint), {}).items():
            prefix = f"headline/{name}_vs_{doc['baseline']}{tail}"
            for field in _HEADLINE_FIELDS:
                if h.get(field) is not None:
                    out[f"{prefix}_{field}"] = h[field]
            code = next((c for k, c in codes.items() if h["verdict"].startswith(k)), None)
            if code is not None:
                out[f"{prefix}_verdict"] = code
                out[f"{prefix}_equivalent"] = float(h["verdict"].startswith("equivalent"))
    return out


def write_report(
    directory: str | Path,
    curves: Mapping[str, Curves],
    doc: Mapping[str, Any],
    *,
    title: str,
    figure: str,
    context: Mapping[str, Any] | None = None,
) -> Path:
    """Write the whole report into ``directory``: ``figures/<figure>.png`` and ``.svg``,
    ``tables/curves.csv`` (:func:`curve_rows`), ``tables/summary.csv`` (:func:`summary_rows`),
    ``summary.json`` (``doc`` plus ``context``) and ``summary.md``; return the directory. The
    clean and adversarial accuracy figures are ``figures/<figure>_clean`` and
    ``figures/<figure>_adversarial``."""
    directory = Path(directory)
    plot_accuracy(curves, directory / "figures" / figure, title=title)
    for endpoint in ("clean", "adversarial"):
        path = directory / "figures" / f"{figure}_{endpoint}"
        plot_accuracy(curves, path, title=f"{title} ({endpoint})", quantity=ENDPOINTS[endpoint])
    write_csv(curve_rows(curves, doc["pool_size"]), directory / "tables" / "curves.csv")
    write_csv(summary_rows(doc), directory / "tables" / "summary.csv")
    document = {**doc, "context": dict(context or {})}
    (directory / "summary.json").write_text(json.dumps(document, indent=2) + "\n")
    (directory / "summary.md").write_text(summary_markdown(doc, title=title, context=context))
    return directory


def report_context(
    *,
    dataset: str,
    config: str,
    upstream: Mapping[str, str],
    n_clean: int,
    n_adversarial: int,
    budgets: Sequence[int],
    seeds: Iterable[int],
    train: TrainConfig,
    warm_start: bool,
    tests: EvalSets,
    original: Mapping[str, float],
    select_on: str = "val",
) -> dict[str, str]:
    """The lines the summary starts with (name → text): dataset, configuration, upstream runs,
    pool, budgets, seeds, training, test sets and the original model's scores.

    Args:
        upstream: role → run id, e.g. ``{"metric": …, "attack": …, "model": …}``.
        original: the original model's :func:`~robust.retraining.evaluate_model` scores.
        select_on: the retrain stage's resolved ``select_on`` (val, val_clean or test), which
            says what ``tests.val`` holds.
    """
    size = n_adversarial if config == "c3" else n_clean + n_adversarial
    return {
        "dataset": dataset,
        "config": f"{config}: {CONFIGS[config]}",
        "runs": ", ".join(f"{role} {run_id}" for role, run_id in upstream.items()),
        "pool": f"{n_clean} clean + {n_adversarial} adversarial inputs; retrained on {size}",
        "budgets": ", ".join(map(str, budgets)),
        "seeds": ", ".join(map(str, seeds)),
        "training": f"{train.optimizer} lr {train.lr}, {train.epochs} epochs, batch "
        f"{train.batch_size}, warm_start={str(warm_start).lower()}",
        "test sets": f"{len(tests.clean)} clean + {len(tests.adversarial)} adversarial",
        "best step chosen on": _selection_line(tests, select_on),
        "original model": ", ".join(f"{k} {v:.4f}" for k, v in original.items()),
    }


def _selection_line(tests: EvalSets, select_on: str) -> str:
    """What the best steps were chosen on, in words."""
    if tests.val is None:
        return "the combined test set (the seed's choice: optimistic)"
    if select_on == "val_clean":
        return f"{len(tests.val)} clean validation inputs (no adversarial validation set)"
    return f"{len(tests.val)} validation inputs, clean followed by adversarial"


def write_study(
    directory: str | Path,
    results: Mapping[str, Repeated],
    pool_size: int,
    *,
    budget: float,
    original: Mapping[str, float],
    costs: Mapping[str, Mapping[str, float]],
    title: str,
    figure: str,
    dataset: str,
    classes: Sequence[str],
    context: Mapping[str, Any] | None = None,
    log_metrics: LogMetrics | None = None,
    margin: float = MARGIN,
) -> dict[str, Any]:
    """Summarise a retrain study and write everything it logs as artifacts into ``directory``.

    Logs (through ``log_metrics``) ``<metric>/accuracy_combined_mean``,
    ``…/accuracy_clean_mean`` and ``…/accuracy_adversarial_mean`` at each number of inputs,
    then :func:`flat_metrics`; warns when there is no headline and logs each verdict line.
    Writes :func:`write_report`'s files and ``best/<metric>/`` (each best model,
    safetensors + spec) with ``best/best.json`` (each best point), so that logging the
    directory as the run's artifact root gives the stage's artifact paths.

    Args:
        directory: created if missing.
        results: metric → its retraining (:func:`~robust.retraining.retrain_metrics`).
        pool_size: the number of inputs the budgets divide.
        budget: the headline compares metrics with random at budgets ≤ this pool fraction.
        original: the original model's scores (the summary's ``original``).
        costs: metric → at least ``time_s`` and ``energy_kwh`` of its fits (e.g.
            ``StageRun.phases``), added to its summary.
        title, figure, context: as :func:`write_report`.
        dataset, classes: recorded with each best model.
        log_metrics: called like ``StageRun.log_metrics(metrics, step)``; None logs nothing.
        margin: of the equivalence tests (:func:`summary_document`).

    Returns:
        The summary document (:func:`summary_document` plus ``original`` and
        ``best_models``), as written to ``summary.json``.
    """
    directory = Path(directory)
    curves = {m: Curves.from_points(r.points) for m, r in results.items()}
    if log_metrics is not None:
        for m, c in curves.items():
            means = {q: c.mean(q).tolist() for q in ENDPOINTS.values()}
            for j, k in enumerate(c.n_inputs.tolist()):
                log_metrics({f"{m}/{q}_mean": v[j] for q, v in means.items()}, k)
    doc = summary_document(curves, pool_size, budget=budget, margin=margin)
    for m, summary in doc["metrics"].items():
        summary |= {k: costs[m][k] for k in ("time_s", "energy_kwh")}
    doc["original"] = dict(original)
    doc["best_models"] = {m: r.best.row() for m, r in results.items()}
    if log_metrics is not None:
        log_metrics(flat_metrics(doc), None)
    if doc["headline_note"]:
        log.warning(doc["headline_note"])
    for endpoint in ENDPOINTS:
        for h in doc[_headline_key(endpoint)].values():
            log.info(h["line"])
    write_report(directory, curves, doc, title=title, figure=figure, context=context)
    for m, r in results.items():
        models.save(r.best_model, directory / "best" / m, dataset=dataset, classes=classes)
    best = json.dumps(doc["best_models"], indent=2, sort_keys=True)  # as StageRun.log_dict
    (directory / "best" / "best.json").write_text(best)
    return doc
