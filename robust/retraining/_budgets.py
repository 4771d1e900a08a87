"""The three retraining configurations, the budget steps and the order each one trains from.

Seed 000 (notes §4) names the configurations after the abstract (mapping inferred):

* ``c1`` one-step adversarial retraining: fresh weights, top-k of the whole ordered pool;
* ``c2`` adversarial retraining: a copy of the original weights and a fresh optimizer, the same
  data as c1;
* ``c3`` adversarial fine-tuning: the original weights, top-k of the pool's **adversarial
  part only** (the seed sliced its metric arrays ``[len(x_train):]``; here the order is
  restricted to adversarial entries, their relative order kept).

Budgets are nested top-k prefixes: with ``m = round(n / steps)`` the sizes are m, 2m, …,
(steps − 1)·m, then the whole pool n (the seed's 20 steps of ≈ 5 %; it rounded m by hand,
e.g. 1750 for GTSRB's 35,287 where this gives 1764).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from torch import Tensor

from robust.errors import ConfigError, DataError

CONFIGS: dict[str, str] = {
    "c1": "fresh weights, top-k of the whole pool (one-step adversarial retraining)",
    "c2": "the original weights and a fresh optimizer, top-k of the whole pool "
    "(adversarial retraining)",
    "c3": "the original weights, top-k of the adversarial part only (adversarial fine-tuning)",
}
"""Configuration name → what it trains (seed 000 §4)."""


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ConfigError(f"{name} must be an integer of at least {low}, but got {name}={value!r}")
    return int(value)


def check_config(config: str) -> None:
    """Raise a ConfigError unless ``config`` is one of :data:`CONFIGS`."""
    if config not in CONFIGS:
        raise ConfigError(f"config must be one of {', '.join(CONFIGS)}, but got {config=}")


def budgets(n: int, steps: int) -> np.ndarray:
    """The nested budget sizes of a pool of ``n`` inputs: m, 2m, …, (steps − 1)·m, n.

    ``m = round(n / steps)`` (halves up), lowered where needed so that (steps − 1)·m < n and
    the sizes strictly increase.

    Args:
        n: pool size, ≥ 1.
        steps: number of budget steps, in [1, n].

    Returns:
        (steps,) int64 sizes, strictly increasing, the last one ``n``.

    Raises:
        ConfigError: n < 1, or steps outside [1, n].

    Example:
        >>> budgets(55998, 20)[[0, 1, -2, -1]].tolist()
        [2800, 5600, 53200, 55998]
    """
    n = _check_int("n", n, 1)
    steps = _check_int("steps", steps, 1)
    if steps > n:
        raise ConfigError(
            f"steps must be at most the pool size {n} (one input per step), but got {steps=}"
        )
    m = (2 * n + steps) // (2 * steps)  # round(n / steps), halves up, in integers
    if steps > 1:
        m = min(m, (n - 1) // (steps - 1))
    return np.append(m * np.arange(1, steps, dtype=np.int64), np.int64(n))


def training_order(
    order: np.ndarray | Tensor, source: np.ndarray | Tensor, config: str
) -> np.ndarray:
    """The order a configuration takes its top-k prefixes from.

    Args:
        order: (N,) pool positions, highest score first (a permutation of ``range(N)``).
        source: (N,) 0 for a clean pool input, 1 for an adversarial one.
        config: ``c1``, ``c2`` (the whole order) or ``c3`` (adversarial entries only, relative
            order kept).

    Returns:
        int64 pool positions: (N,) for c1/c2, (N_adversarial,) for c3.

    Raises:
        ConfigError: unknown config.
        DataError: ``order`` is not a permutation of the pool, or ``source`` is not 0/1.
    """
    check_config(config)
    order = np.asarray(order.cpu() if isinstance(order, Tensor) else order)
    source = np.asarray(source.cpu() if isinstance(source, Tensor) else source)
    n = len(source)
    if source.ndim != 1 or not np.isin(source, (0, 1)).all():
        raise DataError(f"source must be a 1-D array of 0 (clean) and 1 (adversarial), got {n=}")
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise DataError(
            f"order must be a permutation of the {n} pool positions, but got shape {order.shape}"
        )
    order = order.astype(np.int64)
    return order[source[order] == 1] if config == "c3" else order
