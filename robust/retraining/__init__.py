"""Guided retraining (seed 000, notes §4–5): retrain on growing top-k budgets of a pool of clean
and adversarial inputs ordered by a guidance metric, under three configurations, and measure
what each metric buys.

* :data:`CONFIGS`, :func:`budgets`, :func:`training_order` — the configurations c1/c2/c3, the
  nested budget sizes and the order each configuration takes its prefixes from
  (:mod:`robust.retraining._budgets`);
* :class:`Pool`, :class:`EvalSets`, :func:`initial_model`, :func:`evaluate_model`,
  :func:`retrain`, :func:`retrain_seeds` — a model per budget step, for one seed or several
  (:mod:`robust.retraining._protocol`);
* :class:`Workers`, :func:`auto_workers` — the fits in worker processes on the CPU
  (:mod:`robust.retraining._parallel`);
* :class:`Curves`, :func:`mean_ci`, :func:`auc`, :func:`summarise`, :func:`compare`,
  :func:`verdict` — the curves over seeds, 95 % t-intervals, and each metric against random
  (:mod:`robust.retraining._curves`);
* :func:`plot_accuracy`, :func:`curve_rows`, :func:`summary_document`,
  :func:`summary_markdown`, :func:`flat_metrics`, :func:`write_report` — the report
  (:mod:`robust.retraining._report`).

Example:
    >>> from robust.retraining import budgets
    >>> budgets(2156, 5).tolist()
    [431, 862, 1293, 1724, 2156]
"""

from robust.retraining._budgets import CONFIGS, budgets, check_config, training_order
from robust.retraining._curves import (
    VERDICTS,
    Comparison,
    Curves,
    Interval,
    auc,
    budget_mask,
    compare,
    mean_ci,
    summarise,
    verdict,
)
from robust.retraining._parallel import MAX_AUTO_WORKERS, Workers, auto_workers
from robust.retraining._protocol import (
    QUANTITIES,
    EvalSets,
    Point,
    Pool,
    Repeated,
    evaluate_model,
    initial_model,
    retrain,
    retrain_seeds,
)
from robust.retraining._report import (
    STYLES,
    SUMMARY_KEYS,
    curve_rows,
    flat_metrics,
    plot_accuracy,
    summary_document,
    summary_markdown,
    summary_rows,
    write_csv,
    write_report,
)

__all__ = [
    "CONFIGS",
    "MAX_AUTO_WORKERS",
    "QUANTITIES",
    "STYLES",
    "SUMMARY_KEYS",
    "VERDICTS",
    "Comparison",
    "Curves",
    "EvalSets",
    "Interval",
    "Point",
    "Pool",
    "Repeated",
    "Workers",
    "auc",
    "auto_workers",
    "budget_mask",
    "budgets",
    "check_config",
    "compare",
    "curve_rows",
    "evaluate_model",
    "flat_metrics",
    "initial_model",
    "mean_ci",
    "plot_accuracy",
    "retrain",
    "retrain_seeds",
    "summarise",
    "summary_document",
    "summary_markdown",
    "summary_rows",
    "training_order",
    "verdict",
    "write_csv",
    "write_report",
]
