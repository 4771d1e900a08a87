"""Query finished runs as pandas DataFrames (one of the two places that import mlflow).

* :func:`runs` — one row per stage run, filtered by stage, dataset, parent run and status;
* :func:`retraining_curves` — a retrain run's ``tables/curves.csv`` (or every retrain child's);
* :func:`robustness_matrix` — an evaluate run's transfer or adaptive matrix;
* :func:`costs` — time, energy, CO2 and CPU/GPU utilisation per stage run and phase;
* :func:`load_model` — the model a train, advtrain or retrain run logged;
* :func:`write_study_report` — ``report.md``, ``report.html`` and PNG figures of a ``main``
  run (:mod:`robust.results.report`).

Each function documents its columns; the ``*_COLUMNS`` tuples list them in order. A run id may
be a reuse pointer (followed) or, where stated, a parent run such as ``main``'s.
"""

from robust.results._query import (
    COST_COLUMNS,
    CURVE_COLUMNS,
    RUN_COLUMNS,
    costs,
    load_model,
    retraining_curves,
    robustness_matrix,
    runs,
)
from robust.results.replication import Replication, compare_to_seed, reference_curves
from robust.results.report import write_study_report
from robust.results.study import most_robust, study_metrics

__all__ = [
    "COST_COLUMNS",
    "CURVE_COLUMNS",
    "RUN_COLUMNS",
    "Replication",
    "compare_to_seed",
    "costs",
    "load_model",
    "most_robust",
    "reference_curves",
    "retraining_curves",
    "robustness_matrix",
    "runs",
    "study_metrics",
    "write_study_report",
]
