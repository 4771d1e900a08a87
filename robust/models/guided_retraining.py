"""Target CNNs of seed 000, guided retraining (Durán et al., PeerJ CS 9:e1454, 2023).

Architectures as in the original notebooks and ``utils_guided_retraining2.py::get_model``
(see ``seeds/guided-retraining-code-notes.md`` §1): 3×3 ``same`` convolutions with ReLU, 2×2
max-pooling, dropout and dense layers, Keras initialisation. Native inputs are grayscale
(the seed converted every dataset to one channel); any ``(C, H, W)`` works.

Differences from the seed code:

* The models output **logits**: the seeds ended in a softmax layer, and the attacks then took
  gradients of a cross-entropy applied to probabilities as if they were logits.
  Apply ``softmax`` yourself for probabilities.
* Layers have readable names; the seeds' "last hidden layer" (used for LSA, DSA and NC) is
  recorded as ``model.last_hidden``. Keras name → ours: GTSRB ``dense_1`` → ``fc2`` (256),
  Intel ``dense_1`` → ``fc2`` (100), CIFAR ``dense_46`` → ``fc2`` (64), MNIST ``dense_2`` →
  ``fc1`` (128), Fashion ``dense_6`` → ``fc2`` (64).

Parameter counts at the native shapes match the notes: GTSRB 2,788,619, Intel 882,498,
CIFAR 675,722, MNIST 1,625,866, Fashion 448,010.
"""

from __future__ import annotations

from collections.abc import Sequence

from robust.models.layers import SequentialBuilder, ZooModel


def gtsrb_cnn(input_shape: Sequence[int] = (1, 48, 48), num_classes: int = 43) -> ZooModel:
    """GTSRB: C32-C32-P-D.2-C64-C64-P-D.2-C128-C128-P-D.2-F-FC512-D.5-FC256-D.5-FC43.

    Args:
        input_shape: (C, H, W) of the inputs; native (1, 48, 48).
        num_classes: number of output logits; native 43.

    Returns:
        ZooModel mapping (N, C, H, W) float32 in [0, 1] to (N, num_classes) logits;
        last hidden layer ``fc2`` (256 units, Keras ``dense_1``).
    """
    b = SequentialBuilder("gtsrb_cnn", input_shape)
    b.conv(32).conv(32).pool().dropout(0.2)
    b.conv(64).conv(64).pool().dropout(0.2)
    b.conv(128).conv(128).pool().dropout(0.2)
    b.flatten().dense(512).dropout(0.5).dense(256).dropout(0.5)
    return b.build(num_classes, last_hidden="fc2")


def intel_cnn(input_shape: Sequence[int] = (1, 48, 48), num_classes: int = 6) -> ZooModel:
    """Intel scenes: C32-P-C64-P-C128-P-D.3-C128-P-D.3-F-D.5-FC512-D.5-FC100-FC6.

    Args:
        input_shape: (C, H, W) of the inputs; native (1, 48, 48).
        num_classes: number of output logits; native 6.

    Returns:
        ZooModel mapping (N, C, H, W) float32 in [0, 1] to (N, num_classes) logits;
        last hidden layer ``fc2`` (100 units, Keras ``dense_1``).
    """
    b = SequentialBuilder("intel_cnn", input_shape)
    b.conv(32).pool().conv(64).pool().conv(128).pool().dropout(0.3)
    b.conv(128).pool().dropout(0.3)
    b.flatten().dropout(0.5).dense(512).dropout(0.5).dense(100)
    return b.build(num_classes, last_hidden="fc2")


def cifar_cnn(input_shape: Sequence[int] = (1, 32, 32), num_classes: int = 10) -> ZooModel:
    """CIFAR-10: C16-C32-P-C64-C64-P-D.25-C128-P-D.25-F-D.3-FC256-D.3-FC64-FC10.

    Args:
        input_shape: (C, H, W) of the inputs; native (1, 32, 32) (the seed's grayscale).
        num_classes: number of output logits; native 10.

    Returns:
        ZooModel mapping (N, C, H, W) float32 in [0, 1] to (N, num_classes) logits;
        last hidden layer ``fc2`` (64 units, Keras ``dense_46``).
    """
    b = SequentialBuilder("cifar_cnn", input_shape)
    b.conv(16).conv(32).pool().conv(64).conv(64).pool().dropout(0.25)
    b.conv(128).pool().dropout(0.25)
    b.flatten().dropout(0.3).dense(256).dropout(0.3).dense(64)
    return b.build(num_classes, last_hidden="fc2")


def mnist_cnn(input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10) -> ZooModel:
    """MNIST: C32-C64-P-D.25-F-FC128-D.5-FC10.

    Args:
        input_shape: (C, H, W) of the inputs; native (1, 28, 28).
        num_classes: number of output logits; native 10.

    Returns:
        ZooModel mapping (N, C, H, W) float32 in [0, 1] to (N, num_classes) logits;
        last hidden layer ``fc1`` (128 units, Keras ``dense_2``).
    """
    b = SequentialBuilder("mnist_cnn", input_shape)
    b.conv(32).conv(64).pool().dropout(0.25)
    b.flatten().dense(128).dropout(0.5)
    return b.build(num_classes, last_hidden="fc1")


def fashion_cnn(input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10) -> ZooModel:
    """Fashion-MNIST: C64-P-C64-P-D.25-F-FC128-D.5-FC64-D.5-FC10.

    Args:
        input_shape: (C, H, W) of the inputs; native (1, 28, 28).
        num_classes: number of output logits; native 10.

    Returns:
        ZooModel mapping (N, C, H, W) float32 in [0, 1] to (N, num_classes) logits;
        last hidden layer ``fc2`` (64 units, Keras ``dense_6``).
    """
    b = SequentialBuilder("fashion_cnn", input_shape)
    b.conv(64).pool().conv(64).pool().dropout(0.25)
    b.flatten().dense(128).dropout(0.5).dense(64).dropout(0.5)
    return b.build(num_classes, last_hidden="fc2")
