"""Turning scores into a retraining order, and the random baseline's scores.

Seed 000 ordered every metric with ``np.flip(np.argsort(values))``: highest first, with ties
(common: DSA gave every training input 0) in the unspecified order of numpy's quicksort, and
drew its random baseline unseeded. Here ties are broken by a seeded random permutation, so one
seed gives one order on every machine, and ``random_scores`` is seeded.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from robust.errors import ConfigError, DataError


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer of at least 0, but got {seed=}")


def order(scores: np.ndarray | Tensor, seed: int = 0) -> np.ndarray:
    """Indices of ``scores`` from highest to lowest; equal scores in a seeded random order.

    Args:
        scores: (N,) real scores (±inf allowed, NaN not), numpy or torch.
        seed: seed of the tie-breaking permutation.

    Returns:
        (N,) int64 permutation of ``range(N)``.

    Example:
        >>> order(np.array([0.1, 0.9, 0.5])).tolist()
        [1, 2, 0]
    """
    _check_seed(seed)
    if isinstance(scores, Tensor):
        scores = scores.detach().cpu().numpy()
    s = np.asarray(scores)
    if s.ndim != 1 or s.dtype.kind not in "iuf":
        raise DataError(f"scores must be a 1-D real array, but got {s.dtype} of shape {s.shape}")
    s = s.astype(np.float64)
    if np.isnan(s).any():
        raise DataError(f"scores must not be NaN, but {int(np.isnan(s).sum())} are")
    tiebreak = np.random.default_rng(seed).permutation(len(s))
    return np.lexsort((tiebreak, -s)).astype(np.int64)  # last key is the primary one


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    """Seeded uniform scores in [0, 1): the random baseline (its order is a random permutation).

    Example:
        >>> order(random_scores(4, seed=1)).tolist() == order(random_scores(4, seed=1)).tolist()
        True
    """
    _check_seed(seed)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"n must be an integer of at least 0, but got {n=}")
    return np.random.default_rng(seed).random(int(n))
