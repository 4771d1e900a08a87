"""scikit-learn's bundled 8×8 handwritten digits: the default dataset, no network needed.

Source: ``sklearn.datasets.load_digits``, the test part of the UCI "Optical Recognition of
Handwritten Digits" data (Alpaydin, Kaynak, 1998), 1,797 images with pixel counts 0..16.
Pixels are divided by 16 to [0, 1]. The seed studies did not use this dataset; it exists so every
command runs out of the box.
"""

from __future__ import annotations

import numpy as np

from robust.data.raw import Raw

CLASSES = tuple(str(i) for i in range(10))


def load_raw() -> Raw:
    """All 1,797 digits as (N, 1, 8, 8) float32 in [0, 1] with int64 labels."""
    from sklearn.datasets import load_digits  # slow import, only when needed

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]
    return Raw(x, bunch.target.astype(np.int64), None, None, CLASSES)
