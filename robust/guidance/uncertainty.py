"""Uncertainty of a point prediction: DeepGini and softmax entropy.

DeepGini: Feng et al., "DeepGini: Prioritizing Massive Tests to Enhance the Robustness of Deep
Neural Networks", ISSTA 2020 — ``1 − Σ p²``. Softmax entropy: ``−Σ p log p`` (Shannon), base 2
as uncertainty-wizard's ``softmax_entropy`` that seed 000 used. Both are computed from one
deterministic forward pass (dropout off), as seed 000's point-predictor quantifiers were; the
caller passes ``softmax(logits)``. Higher means more uncertain, so it is looked at first.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from robust.errors import ConfigError
from robust.guidance._arrays import probabilities


def deepgini(probs: np.ndarray | Tensor) -> np.ndarray:
    """DeepGini impurity ``1 − Σₖ pₖ²`` per input.

    Args:
        probs: (N, K) class probabilities (rows ≥ 0 summing to 1), numpy or torch.

    Returns:
        (N,) float64 in [0, 1 − 1/K]: 0 for a one-hot prediction, 1 − 1/K for a uniform one.

    Example:
        >>> deepgini(np.array([[1.0, 0.0], [0.5, 0.5]])).tolist()
        [0.0, 0.5]
    """
    p = probabilities(probs)
    return (1.0 - (p * p).sum(1)).clamp_min(0).numpy()


def softmax_entropy(probs: np.ndarray | Tensor, base: float = 2) -> np.ndarray:
    """Shannon entropy ``−Σₖ pₖ log_base pₖ`` per input, with ``0 · log 0 = 0``.

    Args:
        probs: (N, K) class probabilities (rows ≥ 0 summing to 1), numpy or torch.
        base: logarithm base, > 1 (below 1 every entropy is negative); 2 gives bits, as seed
            000.

    Returns:
        (N,) float64 in [0, log_base K].

    Example:
        >>> softmax_entropy(np.array([[1.0, 0.0], [0.5, 0.5]])).tolist()
        [0.0, 1.0]
    """
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not 1 < base < math.inf:
        raise ConfigError(f"base must be a number greater than 1, but got {base=}")
    p = probabilities(probs)
    nats = -torch.special.xlogy(p, p).sum(1)
    return (nats / math.log(base)).clamp_min(0).numpy()
