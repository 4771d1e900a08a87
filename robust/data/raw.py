"""What a loader hands to ``load``: decoded arrays before splitting and scaling."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Raw(NamedTuple):
    """Decoded images of one dataset.

    Attributes:
        x: (N, C, H, W) uint8 in 0..255 (or float in [0, 1] for digits): the official training
            set, or every image when the dataset has no official test set.
        y: (N,) int64 labels of ``x``.
        test_x: (M, C, H, W) official test images, or None.
        test_y: (M,) int64 labels of ``test_x``, or None.
        classes: class names; label ``i`` means ``classes[i]``.
    """

    x: np.ndarray
    y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    classes: tuple[str, ...]
