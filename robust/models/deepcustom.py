"""Target models of seed 004, DeepCustom (fast customizable adversarial data generation).

Architectures as in the repository's Keras JSON files (``seeds/deepcustom-code-notes.md`` §1),
with Keras initialisation (glorot_uniform, zero bias) and channels-last flattening.

Differences from the seed code:

* The models output **logits**: the seeds ended in ``Dense(10, softmax)``, and ART then
  treated those probabilities as logits. Apply ``softmax`` yourself for probabilities.
* ``mnist_5x30`` takes images (N, 1, 28, 28) and flattens them itself (the seed fed
  pre-flattened 784-vectors).

Parameter counts at the native shapes match the notes: ``mnist_5x30`` 27,580,
``cifar_keras`` 122,570.
"""

from __future__ import annotations

from collections.abc import Sequence

from robust.models.layers import SequentialBuilder, ZooModel


def mnist_5x30(input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10) -> ZooModel:
    """MNIST MLP: Flatten-FC30-FC30-FC30-FC30-FC30-FC10, ReLU hidden layers.

    Args:
        input_shape: (C, H, W) of the inputs; native (1, 28, 28).
        num_classes: number of output logits; native 10.

    Returns:
        ZooModel mapping (N, C, H, W) float32 in [0, 1] to (N, num_classes) logits;
        last hidden layer ``fc5`` (30 units).
    """
    b = SequentialBuilder("mnist_5x30", input_shape).flatten()
    for _ in range(5):
        b.dense(30)
    return b.build(num_classes, last_hidden="fc5")


def cifar_keras(input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10) -> ZooModel:
    """CIFAR-10 CNN: valid C32-P-C64-P-C64-F-FC64-FC10 (32→30→15→13→6→4 at 32×32).

    Args:
        input_shape: (C, H, W) of the inputs; native (3, 32, 32).
        num_classes: number of output logits; native 10.

    Returns:
        ZooModel mapping (N, C, H, W) float32 in [0, 1] to (N, num_classes) logits;
        last hidden layer ``fc1`` (64 units).
    """
    b = SequentialBuilder("cifar_keras", input_shape)
    b.conv(32, padding="valid").pool().conv(64, padding="valid").pool()
    b.conv(64, padding="valid").flatten().dense(64)
    return b.build(num_classes, last_hidden="fc1")
