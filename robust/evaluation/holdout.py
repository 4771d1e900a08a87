"""A trained model's report on the held-out test split: the ``test/*`` metrics that train and
advtrain runs log, and the confusion matrix as PNG and CSV."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from robust.evaluation.confusion import confusion_csv, plot_confusion
from robust.evaluation.metrics import evaluate

TEST_KEYS = ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro")
"""The test metrics a train or advtrain run logs as ``test/<key>``."""


def report_test_set(
    model: nn.Module,
    split: Any,
    classes: Sequence[str],
    directory: str | os.PathLike[str],
) -> dict[str, float]:
    """Score ``model`` on ``split`` and write ``confusion.png`` and ``confusion.csv`` into
    ``directory``.

    Args:
        model: outputs (N, len(classes)) logits.
        split: a ``robust.data.Split`` (x (N, C, H, W) float32 in [0, 1], y (N,) int64).
        classes: one name per class (rows and columns of the confusion matrix).
        directory: created if missing.

    Returns:
        ``test/<key>`` for each of :data:`TEST_KEYS`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    report = evaluate(model, split, len(classes))
    plot_confusion(report["confusion"], classes, directory / "confusion.png")
    confusion_csv(report["confusion"], classes, directory / "confusion.csv")
    return {f"test/{k}": report[k] for k in TEST_KEYS}
