"""Evaluating classifiers: predictions, macro metrics, confusion matrices, attack strength."""

from robust.evaluation.adversarial import attack_report, plot_adversarial_grid
from robust.evaluation.confusion import confusion_csv, plot_confusion
from robust.evaluation.metrics import classification_metrics, evaluate
from robust.evaluation.predict import predict

__all__ = [
    "attack_report",
    "classification_metrics",
    "confusion_csv",
    "evaluate",
    "plot_adversarial_grid",
    "plot_confusion",
    "predict",
]
