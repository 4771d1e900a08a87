"""Training hyper-parameters per dataset, as the seeds trained their target models.

Seed 000 (guided retraining, notes §1; optimizers confirmed from ``keras_metadata.pb``):

=========  =========  ====  ======  =====
dataset    optimizer  lr    epochs  batch
=========  =========  ====  ======  =====
gtsrb      RMSprop    1e-3  10      64
intel      RMSprop    1e-3  20      128
cifar10    RMSprop    1e-3  20      64
mnist      RMSprop    1e-3  10      64
fashion    Adam       1e-3  10      64
=========  =========  ====  ======  =====

``digits`` is not a seed dataset: Adam 1e-3, 30 epochs, batch 32 trains ``digits_cnn`` to
≥ 0.95 test accuracy in a few seconds on two CPU cores (checked by
``tests/training/test_digits.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robust.errors import ConfigError
from robust.training.optimizers import OPTIMIZERS


@dataclass(frozen=True)
class TrainConfig:
    """How to train a target model; checks itself on construction."""

    optimizer: str
    """One of ``rmsprop`` (Keras-equivalent), ``adam``, ``sgd``."""
    lr: float
    """Learning rate, > 0."""
    epochs: int
    """Passes over the training split, ≥ 1."""
    batch_size: int
    """Inputs per optimisation step, ≥ 1."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, but got "
                f"optimizer={self.optimizer!r}"
            )
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a finite number greater than 0, but got lr={self.lr!r}")
        for field in ("epochs", "batch_size"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(
                    f"{field} must be an integer of at least 1, but got {field}={value!r}"
                )


_DEFAULTS: dict[str, TrainConfig] = {
    "digits": TrainConfig("adam", 1e-3, epochs=30, batch_size=32),
    "mnist": TrainConfig("rmsprop", 1e-3, epochs=10, batch_size=64),
    "fashion": TrainConfig("adam", 1e-3, epochs=10, batch_size=64),
    "cifar10": TrainConfig("rmsprop", 1e-3, epochs=20, batch_size=64),
    "gtsrb": TrainConfig("rmsprop", 1e-3, epochs=10, batch_size=64),
    "intel": TrainConfig("rmsprop", 1e-3, epochs=20, batch_size=128),
}


def defaults_for(dataset: str) -> TrainConfig:
    """The seed's training configuration for ``dataset`` (see the module table).

    Raises:
        ConfigError: unknown dataset name.
    """
    if dataset not in _DEFAULTS:
        raise ConfigError(f"dataset must be one of {', '.join(_DEFAULTS)}, but got {dataset=}")
    return _DEFAULTS[dataset]
