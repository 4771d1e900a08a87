"""What the retrain stage derives from its upstream runs before any fit: the default number of
budget steps, the size of the pool a configuration trains from, each seed's order, and the pool
and test sets gathered from tensors the metric and attack stages logged.

Every function takes tensors already loaded (by whoever fetched the runs), so this module knows
no run store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import Tensor

from robust import guidance
from robust.data import Split
from robust.errors import ConfigError
from robust.retraining._budgets import check_config
from robust.retraining._protocol import EvalSets, Pool


def training_pool_size(config: str, n_clean: int, n_adversarial: int, *, metric_run: str) -> int:
    """The number of inputs a configuration's budgets divide: the adversarial part for c3,
    the whole pool otherwise.

    Args:
        config: ``c1``, ``c2`` or ``c3``.
        n_clean, n_adversarial: the pool's parts (the metric run's ``pool/n_clean`` and
            ``pool/n_adversarial``).
        metric_run: the run that scored the pool, named in the error.

    Raises:
        ConfigError: an unknown config, or c3 with a pool without adversarial inputs.
    """
    check_config(config)
    size = n_adversarial if config == "c3" else n_clean + n_adversarial
    if size == 0:
        raise ConfigError(
            f"config=c3 retrains on adversarial inputs, but metric run "
            f"{metric_run}'s pool has none"
        )
    return size


def order_for(
    metric: str,
    seed: int,
    orders: Mapping[str, np.ndarray | Tensor],
    n: int,
    redraw_random: bool,
) -> np.ndarray | Tensor:
    """The order seed ``seed`` retrains ``metric`` from: the metric run's, or for ``random``
    with ``redraw_random`` a fresh one drawn as the metric stage draws its own (so equal to it
    for the metric run's seed).

    Args:
        orders: metric → (N,) int64 pool positions, as the metric stage logged them.
        n: the pool size N.
    """
    if metric == "random" and redraw_random:
        return guidance.order(guidance.random_scores(n, seed), seed)
    return orders[metric]


def seed_orders(
    metrics: Iterable[str],
    seeds: Iterable[int],
    orders: Mapping[str, np.ndarray | Tensor],
    n: int,
    *,
    redraw_random: bool,
) -> dict[str, dict[int, np.ndarray | Tensor]]:
    """metric → seed → :func:`order_for`: what :func:`~robust.retraining.retrain_metrics`
    takes."""
    seeds = list(seeds)
    return {m: {s: order_for(m, s, orders, n, redraw_random) for s in seeds} for m in metrics}


def pool_from(
    described: Mapping[str, Tensor], clean: Split, adversarial: Mapping[str, Tensor]
) -> Pool:
    """The pool a metric run scored, gathered again from the data it describes.

    Args:
        described: the metric run's ``guidance/pool.safetensors``: ``source`` (N,) 0 clean /
            1 adversarial, ``index`` (N,) into its part, ``y`` (N,) labels (checked).
        clean: the clean training split the pool was drawn from.
        adversarial: the attack run's ``adversarial/train.safetensors``: ``x``, ``y``.

    Raises:
        DataError: as :meth:`Pool.assemble` (another dataset or attack run than the scored).
    """
    return Pool.assemble(
        described["source"],
        described["index"],
        clean,
        Split(adversarial["x"], adversarial["y"].long()),
        y=described["y"],
    )


def eval_sets(
    clean: Split,
    adversarial: Mapping[str, Tensor],
    val: Split | None = None,
    val_adversarial: Mapping[str, Tensor] | None = None,
) -> EvalSets:
    """The test sets, the clean test split and an attack run's ``adversarial/test`` tensors
    (``x``, ``y``), and the selection set: the clean validation split ``val`` followed by
    ``val_adversarial`` (the attack run's ``adversarial/val``) when given.

    Raises:
        ConfigError: ``val_adversarial`` without ``val``.
    """
    if val_adversarial is not None and val is None:
        raise ConfigError("val_adversarial needs the clean val split it is selected with")
    if val is not None and val_adversarial is not None:
        val = Split(
            torch.cat([val.x, val_adversarial["x"]]),
            torch.cat([val.y, val_adversarial["y"].long()]),
        )
    return EvalSets(clean, Split(adversarial["x"], adversarial["y"].long()), val)
