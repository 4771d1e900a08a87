"""Optimizers by name, with Keras defaults where the seeds trained with Keras.

* ``rmsprop``: Keras ``RMSprop(rho=0.9, epsilon=1e-7)`` = ``torch.optim.RMSprop(alpha=0.9,
  eps=1e-7)``; both add eps after the square root (torch's defaults are alpha 0.99, eps 1e-8).
* ``adam``: Keras ``Adam(epsilon=1e-7)`` → ``torch.optim.Adam(eps=1e-7)``. Keras adds epsilon
  before the bias correction of the step and torch after, a difference of order 1e-7 that only
  matters in the first steps.
* ``sgd``: plain SGD, no momentum (Keras' default).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from robust.errors import ConfigError

OPTIMIZERS: tuple[str, ...] = ("rmsprop", "adam", "sgd")
"""Names accepted by :func:`build_optimizer`."""


def build_optimizer(name: str, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """A Keras-equivalent optimizer by name.

    Args:
        name: one of :data:`OPTIMIZERS`.
        params: the parameters to optimise (e.g. ``model.parameters()``).
        lr: learning rate, > 0.

    Returns:
        The torch optimizer.

    Raises:
        ConfigError: unknown name or lr ≤ 0.
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, but got {name=}")
    if not lr > 0:
        raise ConfigError(f"lr must be greater than 0, but got {lr=}")
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=1e-7)
    return torch.optim.SGD(params, lr=lr)
