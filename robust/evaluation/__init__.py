"""Evaluating classifiers: macro metrics, confusion matrices, attack strength, robust-accuracy
matrices, Wilson intervals, gradient-masking checks, guidance-score summaries. ``predict``
(now :func:`robust.models.predict`) and ``AttackSpec`` (now :class:`robust.attacks.AttackSpec`)
are re-exported for older callers."""

from robust.attacks import AttackSpec
from robust.evaluation.adversarial import (
    attack_report,
    plot_adversarial_grid,
    report_adversarial_set,
)
from robust.evaluation.confusion import confusion_csv, plot_confusion
from robust.evaluation.holdout import TEST_KEYS, report_test_set
from robust.evaluation.intervals import wilson
from robust.evaluation.masking import Check, masking_checks
from robust.evaluation.matrix import (
    ADAPTIVE_METHODS,
    adaptive_matrix,
    plot_matrix,
    transfer_matrix,
    write_matrix,
)
from robust.evaluation.metrics import classification_metrics, evaluate
from robust.evaluation.scores import plot_score_histogram, score_summary
from robust.models import predict

__all__ = [
    "ADAPTIVE_METHODS",
    "TEST_KEYS",
    "AttackSpec",
    "Check",
    "adaptive_matrix",
    "attack_report",
    "classification_metrics",
    "confusion_csv",
    "evaluate",
    "masking_checks",
    "plot_adversarial_grid",
    "plot_confusion",
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
