"""Evaluating classifiers: predictions, macro metrics, confusion matrices, attack strength,
robust-accuracy matrices, guidance-score summaries."""

from robust.evaluation.adversarial import attack_report, plot_adversarial_grid
from robust.evaluation.confusion import confusion_csv, plot_confusion
from robust.evaluation.matrix import (
    ADAPTIVE_METHODS,
    AttackSpec,
    adaptive_matrix,
    plot_matrix,
    transfer_matrix,
)
from robust.evaluation.metrics import classification_metrics, evaluate
from robust.evaluation.predict import predict
from robust.evaluation.scores import plot_score_histogram, score_summary

__all__ = [
    "ADAPTIVE_METHODS",
    "AttackSpec",
    "adaptive_matrix",
    "attack_report",
    "classification_metrics",
    "confusion_csv",
    "evaluate",
    "plot_adversarial_grid",
    "plot_confusion",
    "plot_matrix",
    "plot_score_histogram",
    "predict",
    "score_summary",
    "transfer_matrix",
]
