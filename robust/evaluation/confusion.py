"""Confusion matrices on disk: an annotated PNG (matplotlib, Agg) and a labelled CSV."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robust.errors import DataError


def _check(confusion: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """``confusion`` as a square int array with one class name per row, or DataError."""
    matrix = np.asarray(confusion)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or len(classes) != len(matrix):
        raise DataError(
            f"confusion must be a square matrix with one class name per row, but got shape "
            f"{matrix.shape} and {len(classes)} class names"
        )
    return matrix


def plot_confusion(
    confusion: np.ndarray, classes: Sequence[str], path: str | os.PathLike[str]
) -> Path:
    """Write a confusion-matrix heat map with the count in every cell as a PNG.

    Uses matplotlib's object API on an Agg canvas, so it never opens a window nor changes the
    global backend.

    Args:
        confusion: (K, K) counts, rows true classes, columns predicted classes.
        classes: K class names.
        path: output file (``.png``); parent folders are created.

    Returns:
        ``path`` as a Path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = _check(confusion, classes)
    k = len(matrix)
    size = max(4.0, 0.45 * k + 2.0)
    fig = Figure(figsize=(size, size), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set(
        xticks=range(k),
        yticks=range(k),
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix",
    )
    ax.set_xticklabels([str(c) for c in classes], rotation=90)
    ax.set_yticklabels([str(c) for c in classes])
    threshold = matrix.max() / 2 if matrix.size else 0
    fontsize = 8 if k <= 20 else 5
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if matrix[i, j] > threshold else "black",
            )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def confusion_csv(
    confusion: np.ndarray, classes: Sequence[str], path: str | os.PathLike[str]
) -> Path:
    """Write the confusion matrix as CSV: header ``true\\predicted,<classes>``, one row per class.

    Args:
        confusion: (K, K) counts, rows true classes, columns predicted classes.
        classes: K class names.
        path: output file; parent folders are created.

    Returns:
        ``path`` as a Path.
    """
    matrix = _check(confusion, classes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["true\\predicted", *map(str, classes)])
        for name, row in zip(classes, matrix, strict=True):
            writer.writerow([str(name), *(int(v) for v in row)])
    return path
