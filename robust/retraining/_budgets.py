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
e.g. 1750 for GTSRB's 35,287 where this gives 1764). :data:`SEED_BUDGETS` holds the seed's own
step sizes and set counts per dataset and configuration (notes §4), which
:func:`seed_budgets` turns into sizes (the retrain stage's ``budgets=seed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import NamedTuple

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


class SeedBudget(NamedTuple):
    """Seed 000's budgets of one dataset and configuration: ``sets`` nested sets of sizes m,
    2m, …, (sets − 1)·m and then the whole pool of ``n`` inputs (the seed's pool size)."""

    m: int
    sets: int
    n: int


SEED_BUDGETS: dict[str, dict[str, SeedBudget]] = {
    "gtsrb": {
        "c1": SeedBudget(1750, 21, 35287),
        "c2": SeedBudget(1750, 21, 35287),
        "c3": SeedBudget(190, 20, 3921),
    },
    "intel": {
        "c1": SeedBudget(700, 21, 14224),
        "c2": SeedBudget(700, 21, 14224),
        "c3": SeedBudget(150, 20, 3000),
    },
    "cifar10": {
        "c1": SeedBudget(2400, 20, 47999),
        "c2": SeedBudget(2400, 20, 47999),
        "c3": SeedBudget(300, 20, 6000),
    },
    "mnist": {
        "c1": SeedBudget(2800, 20, 55998),
        "c2": SeedBudget(2800, 20, 55998),
        "c3": SeedBudget(340, 20, 6999),
    },
    "fashion": {
        "c1": SeedBudget(2800, 20, 55998),
        "c2": SeedBudget(2800, 20, 55998),
        "c3": SeedBudget(340, 20, 6999),
    },
}
"""Dataset → configuration → seed 000's :class:`SeedBudget` (code notes §4: c3 divides the
adversarial part only; the seed had no digits)."""

BUDGETS = ("auto", "seed")
"""How the retrain stage sizes its budgets: ``auto`` (:func:`budgets` of ``steps``) or
``seed`` (:func:`seed_budgets`)."""


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ConfigError(f"{name} must be an integer of at least {low}, but got {name}={value!r}")
    return int(value)


def check_config(config: str) -> None:
    """Raise a ConfigError unless ``config`` is one of :data:`CONFIGS`."""
    if config not in CONFIGS:
        raise ConfigError(f"config must be one of {', '.join(CONFIGS)}, but got {config=}")


def budgets(n: int, steps: int | Sequence[int]) -> np.ndarray:
    """The nested budget sizes of a pool of ``n`` inputs: m, 2m, …, (steps − 1)·m, n.

    ``m = round(n / steps)`` (halves up), lowered where needed so that (steps − 1)·m < n and
    the sizes strictly increase. Sizes given instead of a number of steps (e.g.
    :func:`seed_budgets`) are checked and returned as they are.

    Args:
        n: pool size, ≥ 1.
        steps: number of budget steps, in [1, n]; or the sizes themselves, strictly increasing
            from at least 1 to ``n``.

    Returns:
        (steps,) int64 sizes, strictly increasing, the last one ``n``.

    Raises:
        ConfigError: n < 1, steps outside [1, n], or sizes that do not increase to n.

    Example:
        >>> budgets(55998, 20)[[0, 1, -2, -1]].tolist()
        [2800, 5600, 53200, 55998]
    """
    n = _check_int("n", n, 1)
    if isinstance(steps, Sequence | np.ndarray):
        return _check_sizes(n, steps)
    steps = _check_int("steps", steps, 1)
    if steps > n:
        raise ConfigError(
            f"steps must be at most the pool size {n} (one input per step), but got {steps=}"
        )
    m = (2 * n + steps) // (2 * steps)  # round(n / steps), halves up, in integers
    if steps > 1:
        m = min(m, (n - 1) // (steps - 1))
    return np.append(m * np.arange(1, steps, dtype=np.int64), np.int64(n))


def n_steps(steps: int | Sequence[int]) -> int:
    """The number of budget steps ``steps`` gives :func:`budgets`: itself, or its length."""
    return len(steps) if isinstance(steps, Sequence | np.ndarray) else int(steps)


def _check_sizes(n: int, sizes: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(sizes)
    ok = arr.ndim == 1 and len(arr) > 0 and np.issubdtype(arr.dtype, np.integer)
    if not ok or arr[0] < 1 or arr[-1] != n or np.any(np.diff(arr) <= 0):
        raise ConfigError(
            f"budget sizes must be integers increasing strictly from at least 1 to the pool "
            f"size {n}, but got sizes={list(sizes)!r}"
        )
    return arr.astype(np.int64)


def seed_budget(dataset: str, config: str) -> SeedBudget:
    """Seed 000's :class:`SeedBudget` of ``dataset`` and ``config`` (:data:`SEED_BUDGETS`).

    Raises:
        ConfigError: an unknown config, or a dataset the seed did not study (digits).
    """
    check_config(config)
    if dataset not in SEED_BUDGETS:
        raise ConfigError(
            f"budgets=seed exists for {', '.join(SEED_BUDGETS)} only (seed 000's datasets), "
            f"but got {dataset=}"
        )
    return SEED_BUDGETS[dataset][config]


def seed_budgets(dataset: str, config: str, n: int | None = None) -> np.ndarray:
    """Seed 000's budget sizes of ``dataset`` and ``config``: m, 2m, …, (sets − 1)·m, then n.

    With the seed's pool size (``n`` None) these are exactly the seed's sets; with another pool
    size the step m and the number of sets stay the seed's and the last set is the whole pool.

    Args:
        dataset: one of :data:`SEED_BUDGETS` (mnist, fashion, cifar10, gtsrb, intel).
        config: ``c1``, ``c2`` or ``c3`` (c3: ``n`` counts the adversarial inputs only).
        n: the pool size; None: the seed's.

    Returns:
        (sets,) int64 sizes, strictly increasing, the last one ``n``.

    Raises:
        ConfigError: as :func:`seed_budget`, or a pool of at most (sets − 1)·m inputs.

    Example:
        >>> seed_budgets("gtsrb", "c3")[[0, 1, -2, -1]].tolist()
        [190, 380, 3610, 3921]
    """
    m, sets, seed_n = seed_budget(dataset, config)
    n = seed_n if n is None else _check_int("n", n, 1)
    if n <= (sets - 1) * m:
        raise ConfigError(
            f"budgets=seed for {dataset} {config} steps by {m} over {sets} sets, so the pool "
            f"must hold more than {(sets - 1) * m} inputs (the seed's held {seed_n}), but got "
            f"{n=}"
        )
    return np.append(m * np.arange(1, sets, dtype=np.int64), np.int64(n))


DEFAULT_STEPS = 20
"""Budget steps of the seed (≈ 5 % of the pool each)."""
STEPS: dict[str, int] = {"digits": 5}
"""Dataset → budget steps where it differs from :data:`DEFAULT_STEPS` (digits: minutes)."""


EPOCHS: dict[str, int] = {"digits": 10}
"""Dataset → epochs of every retraining where they differ from the dataset's training default
(digits: its 30 would put the default study past 10 minutes on two CPU cores; the seed's
datasets keep the original's epochs, the seed's protocol)."""


def default_epochs(dataset: str) -> int | None:
    """The retraining epochs when ``epochs`` is auto: :data:`EPOCHS`, else None (the dataset's
    training default).

    Example:
        >>> default_epochs("digits"), default_epochs("mnist")
        (10, None)
    """
    return EPOCHS.get(dataset)


def default_steps(dataset: str) -> int:
    """The budget steps when ``steps`` is auto: :data:`STEPS` or :data:`DEFAULT_STEPS`.

    Example:
        >>> default_steps("digits"), default_steps("mnist")
        (5, 20)
    """
    return STEPS.get(dataset, DEFAULT_STEPS)


def budget_sizes(
    kind: str, dataset: str, config: str, n: int, steps: int | None = None
) -> np.ndarray:
    """The budget sizes the retrain stage trains: ``kind`` ``auto`` gives :func:`budgets` of
    ``steps`` (None: :func:`~robust.retraining.default_steps`), ``seed`` gives
    :func:`seed_budgets` (``steps`` must then be None).

    Raises:
        ConfigError: an unknown kind, steps with ``seed``, or as :func:`budgets` and
            :func:`seed_budgets`.

    Example:
        >>> budget_sizes("seed", "mnist", "c3", 6999)[[0, -2, -1]].tolist()
        [340, 6460, 6999]
    """
    if kind not in BUDGETS:
        raise ConfigError(f"budgets must be one of {', '.join(BUDGETS)}, but got budgets={kind!r}")
    if kind == "auto":
        return budgets(n, default_steps(dataset) if steps is None else steps)
    if steps is not None:
        raise ConfigError(
            f"steps must be auto with budgets=seed (the seed fixes its sets), but got {steps=}"
        )
    return seed_budgets(dataset, config, n)


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
