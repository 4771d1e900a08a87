"""Guided retraining (seed 000, notes §4–5): retrain on growing top-k budgets of a pool of clean
and adversarial inputs ordered by a guidance metric, under three configurations, and measure
what each metric buys.

* :data:`CONFIGS`, :func:`budgets`, :func:`training_order` — the configurations c1/c2/c3, the
  nested budget sizes and the order each configuration takes its prefixes from;
  :data:`SEED_BUDGETS`, :func:`seed_budgets`, :func:`budget_sizes` — seed 000's own sizes per
  dataset and configuration, and the stage's choice between them; :data:`EPOCHS`,
  :func:`default_epochs` — the retraining epochs where they differ from the training default
  (:mod:`robust.retraining._budgets`);
* :class:`Pool`, :class:`EvalSets`, :func:`initial_model`, :func:`evaluate_model`,
  :func:`retrain` — a model per budget step for one seed (:mod:`robust.retraining._protocol`);
* :class:`Workers`, :func:`auto_workers`, :func:`resolve_workers` — the fits in worker
  processes on the CPU (:mod:`robust.retraining._parallel`);
* :class:`Repeated`, :func:`retrain_seeds`, :func:`retrain_metrics`, :func:`point_metrics`,
  :func:`merge_originals` — the protocol over seeds, metrics and original models, with
  progress and per-point metrics
  (:mod:`robust.retraining._seeds`);
* :data:`STEPS`, :func:`default_steps`, :func:`training_pool_size`, :func:`order_for`,
  :func:`seed_orders`, :func:`pool_from`, :func:`eval_sets` — the stage's inputs from the
  tensors its upstream runs logged (:mod:`robust.retraining._inputs`);
* :class:`Curves`, :func:`mean_ci`, :func:`auc`, :func:`summarise`, :func:`compare`,
  :func:`verdict` — the curves over seeds, 95 % t-intervals, and each metric against random
  (:mod:`robust.retraining._curves`);
* :func:`paired_t`, :func:`tost`, :func:`holm` — the paired t-test, the equivalence test and
  Holm's adjustment behind the verdicts (:mod:`robust.retraining._inference`);
* :func:`conditioning`, :func:`plot_accuracy`, :func:`curve_rows`, :func:`summary_document`,
  :func:`summary_markdown`, :func:`flat_metrics`, :func:`write_report`, :func:`report_context`,
  :func:`write_study` — the report (:mod:`robust.retraining._report`).

Example:
    >>> from robust.retraining import budgets
    >>> budgets(2156, 5).tolist()
    [431, 862, 1293, 1724, 2156]
"""

from robust.retraining._budgets import (
    BUDGETS,
    CONFIGS,
    DEFAULT_STEPS,
    EPOCHS,
    SEED_BUDGETS,
    STEPS,
    SeedBudget,
    budget_sizes,
    budgets,
    check_config,
    default_epochs,
    default_steps,
    seed_budget,
    seed_budgets,
    training_order,
)
from robust.retraining._curves import (
    MARGIN,
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
from robust.retraining._inference import ALPHA, Tost, TTest, holm, paired_t, tost
from robust.retraining._inputs import (
    eval_sets,
    order_for,
    pool_from,
    seed_orders,
    training_pool_size,
)
from robust.retraining._parallel import MAX_AUTO_WORKERS, Workers, auto_workers, resolve_workers
from robust.retraining._protocol import (
    QUANTITIES,
    SELECTION,
    EvalSets,
    Point,
    Pool,
    evaluate_model,
    initial_model,
    retrain,
)
from robust.retraining._report import (
    CONDITIONING,
    CONDITIONING_ORIGINALS,
    ENDPOINTS,
    SELECTED_ON,
    STYLES,
    SUMMARY_KEYS,
    conditioning,
    curve_rows,
    flat_metrics,
    plot_accuracy,
    report_context,
    save_figure,
    summary_document,
    summary_markdown,
    summary_rows,
    write_csv,
    write_report,
    write_study,
)
from robust.retraining._seeds import (
    Repeated,
    merge_originals,
    point_metrics,
    retrain_metrics,
    retrain_seeds,
    top_metric,
)

__all__ = [
    "ALPHA",
    "BUDGETS",
    "CONDITIONING",
    "CONDITIONING_ORIGINALS",
    "CONFIGS",
    "DEFAULT_STEPS",
    "ENDPOINTS",
    "EPOCHS",
    "MARGIN",
    "MAX_AUTO_WORKERS",
    "QUANTITIES",
    "SEED_BUDGETS",
    "SELECTED_ON",
    "SELECTION",
    "STEPS",
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
    "SeedBudget",
    "TTest",
    "Tost",
    "Workers",
    "auc",
    "auto_workers",
    "budget_mask",
    "budget_sizes",
    "budgets",
    "check_config",
    "compare",
    "conditioning",
    "curve_rows",
    "default_epochs",
    "default_steps",
    "eval_sets",
    "evaluate_model",
    "flat_metrics",
    "holm",
    "initial_model",
    "mean_ci",
    "merge_originals",
    "order_for",
    "paired_t",
    "plot_accuracy",
    "point_metrics",
    "pool_from",
    "report_context",
    "resolve_workers",
    "retrain",
    "retrain_metrics",
    "retrain_seeds",
    "save_figure",
    "seed_budget",
    "seed_budgets",
    "seed_orders",
    "summarise",
    "summary_document",
    "summary_markdown",
    "summary_rows",
    "top_metric",
    "tost",
    "training_order",
    "training_pool_size",
    "verdict",
    "write_csv",
    "write_report",
    "write_study",
]
