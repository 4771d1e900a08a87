"""``digits_cnn``: a small CNN for scikit-learn's 8×8 digits, the project's embedded default.

Not from a seed. Sized so that ``robust.training.defaults_for("digits")`` reaches ≥ 0.95 test
accuracy in a few seconds on two CPU cores. Keras-style layers and initialisation like the
rest of the zoo; outputs **logits** (no softmax layer).
"""

from __future__ import annotations

from collections.abc import Sequence

from robust.models.layers import SequentialBuilder, ZooModel


def digits_cnn(input_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10) -> ZooModel:
    """Digits: C16-C32-P-F-FC64-D.25-FC10 (38,282 parameters at 1×8×8).

    Args:
        input_shape: (C, H, W) of the inputs; native (1, 8, 8).
        num_classes: number of output logits; native 10.

    Returns:
        ZooModel mapping (N, C, H, W) float32 in [0, 1] to (N, num_classes) logits;
        last hidden layer ``fc1`` (64 units).
    """
    b = SequentialBuilder("digits_cnn", input_shape)
    b.conv(16).conv(32).pool()
    b.flatten().dense(64).dropout(0.25)
    return b.build(num_classes, last_hidden="fc1")
