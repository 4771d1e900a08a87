"""Training target models: the fit loop, Keras-equivalent optimizers, per-dataset defaults."""

from robust.training.defaults import TrainConfig, defaults_for
from robust.training.fit import fit
from robust.training.optimizers import OPTIMIZERS, build_optimizer

__all__ = ["OPTIMIZERS", "TrainConfig", "build_optimizer", "defaults_for", "fit"]
