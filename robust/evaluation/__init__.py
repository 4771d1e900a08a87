"""Evaluating classifiers: macro metrics, confusion matrices, attack strength, robust-accuracy
matrices (transfer; adaptive, worst case per input), ε-curves, Wilson intervals,
gradient-masking checks, guidance-score summaries. ``predict``
(now :func:`robust.models.predict`) and ``AttackSpec`` (now :class:`robust.attacks.AttackSpec`)
are re-exported for older callers."""

from robust.attacks import AttackSpec
from robust.evaluation.adaptive import (
    ADAPTIVE,
    WORST,
    Adaptive,
    AdaptiveDGN,
    AdaptiveEvaluation,
    evaluate_adaptive,
)
from robust.evaluation.adversarial import (
    attack_report,
    plot_adversarial_grid,
    report_adversarial_set,
)
from robust.evaluation.confusion import confusion_csv, plot_confusion
from robust.evaluation.curves import eps_curve, plot_eps_curve
from robust.evaluation.holdout import TEST_KEYS, report_test_set
from robust.evaluation.intervals import wilson
from robust.evaluation.masking import Check, masking_checks
from robust.evaluation.matrix import (
    ADAPTIVE_METHODS,
    adaptive_matrix,
    interval_table,
    matrix_cells,
    plot_matrix,
    transfer_matrix,
    write_matrix,
)
from robust.evaluation.metrics import classification_metrics, evaluate
from robust.evaluation.scores import plot_score_histogram, score_summary
from robust.models import predict

__all__ = [
    "ADAPTIVE",
    "ADAPTIVE_METHODS",
    "TEST_KEYS",
    "WORST",
    "Adaptive",
    "AdaptiveDGN",
    "AdaptiveEvaluation",
    "AttackSpec",
    "Check",
    "adaptive_matrix",
    "attack_report",
    "classification_metrics",
    "confusion_csv",
    "eps_curve",
    "evaluate",
    "evaluate_adaptive",
    "interval_table",
    "masking_checks",
    "matrix_cells",
    "plot_adversarial_grid",
    "plot_confusion",
    "plot_eps_curve",
    "plot_matrix",
    "plot_score_histogram",
    "predict",
    "report_adversarial_set",
    "report_test_set",
    "score_summary",
    "transfer_matrix",
    "wilson",
    "write_matrix",
]
