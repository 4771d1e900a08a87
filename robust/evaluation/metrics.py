"""Classification metrics: accuracy, macro precision/recall/F1 and the confusion matrix.

Replaces the seed's Keras precision/recall (threshold-0.5 *micro* metrics on softmax outputs,
notes §7 of the guided-retraining notes) with the usual macro averages. They match
scikit-learn's ``precision_score``/``recall_score``/``f1_score`` with ``average="macro"`` and
``zero_division=0``:

* a class that is never predicted has precision 0, a class absent from ``y_true`` recall 0,
  and F1 = 2·TP / (2·TP + FP + FN) is 0 when TP = 0;
* the macro average runs over the classes that occur in ``y_true`` or ``y_pred`` (scikit-learn's
  default labels); classes absent from both have no defined score and are left out.

Everything is computed from one ``np.bincount`` confusion matrix; scikit-learn is not needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robust.errors import ConfigError, DataError
from robust.models import predict


def _labels(name: str, values: Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    """``values`` as a 1-D int64 numpy array of labels in [0, num_classes), or DataError."""
    arr = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise DataError(
            f"{name} must be a 1-D array of integer labels, but got shape {arr.shape} and "
            f"dtype {arr.dtype}"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise DataError(
            f"{name} must hold labels in [0, {num_classes}), but they span "
            f"[{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64)


def classification_metrics(
    y_true: Tensor | np.ndarray, y_pred: Tensor | np.ndarray, num_classes: int
) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1 and the confusion matrix.

    Args:
        y_true: (N,) int true labels in [0, num_classes).
        y_pred: (N,) int predicted labels in [0, num_classes).
        num_classes: number of classes, ≥ 1 (the size of the confusion matrix).

    Returns:
        ``accuracy``, ``precision_macro``, ``recall_macro``, ``f1_macro`` (floats in [0, 1])
        and ``confusion``: (num_classes, num_classes) int64 numpy array, rows true classes,
        columns predicted classes.

    Raises:
        ConfigError: num_classes < 1.
        DataError: empty or mismatched label vectors, or labels out of range.

    Example:
        >>> m = classification_metrics([0, 1, 1], [0, 1, 0], num_classes=2)
        >>> m["accuracy"], m["confusion"].tolist()
        (0.6666666666666666, [[1, 0], [1, 1]])
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"num_classes must be an integer of at least 1, but got {num_classes=}")
    true = _labels("y_true", y_true, num_classes)
    pred = _labels("y_pred", y_pred, num_classes)
    if len(true) != len(pred) or len(true) == 0:
        raise DataError(
            f"y_true and y_pred must hold the same number N ≥ 1 of labels, but got "
            f"{len(true)} and {len(pred)}"
        )
    confusion = np.bincount(true * num_classes + pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )
    tp = np.diag(confusion).astype(np.float64)
    n_pred = confusion.sum(axis=0)  # TP + FP per class
    n_true = confusion.sum(axis=1)  # TP + FN per class
    present = (n_pred + n_true) > 0

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    precision = ratio(tp, n_pred.astype(np.float64))
    recall = ratio(tp, n_true.astype(np.float64))
    f1 = ratio(2 * tp, (n_pred + n_true).astype(np.float64))
    return {
        "accuracy": float(tp.sum() / len(true)),
        "precision_macro": float(precision[present].mean()),
        "recall_macro": float(recall[present].mean()),
        "f1_macro": float(f1[present].mean()),
        "confusion": confusion.astype(np.int64),
    }


def evaluate(
    model: nn.Module, split: Any, num_classes: int | None = None, *, batch_size: int = 1024
) -> dict[str, Any]:
    """Loss and classification metrics of ``model`` on a split.

    Args:
        model: outputs (N, num_classes) logits.
        split: has ``x`` (N, C, H, W) float32 in [0, 1] and ``y`` (N,) int64
            (a ``robust.data.Split``).
        num_classes: size of the confusion matrix; ``None`` means the model's logit count.
        batch_size: inputs per forward pass.

    Returns:
        ``loss`` (mean cross-entropy, nats) plus every key of :func:`classification_metrics`.
    """
    logits = predict(model, split.x, batch_size=batch_size)
    y = torch.as_tensor(split.y).to("cpu", torch.long)
    n_classes = logits.shape[1] if num_classes is None else num_classes
    if len(y) and int(y.max()) >= logits.shape[1]:
        raise DataError(
            f"split.y must hold labels below the model's {logits.shape[1]} outputs, but its "
            f"largest label is {int(y.max())}"
        )
    metrics = classification_metrics(y, logits.argmax(1), n_classes)
    return {"loss": F.cross_entropy(logits, y).item(), **metrics}
