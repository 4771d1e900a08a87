"""Evaluating classifiers: batched predictions, accuracy and macro metrics, confusion matrices."""

from robust.evaluation.confusion import confusion_csv, plot_confusion
from robust.evaluation.metrics import classification_metrics, evaluate
from robust.evaluation.predict import predict

__all__ = ["classification_metrics", "confusion_csv", "evaluate", "plot_confusion", "predict"]
