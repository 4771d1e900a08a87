"""Wilson score intervals for accuracies: :func:`wilson`.

A robust accuracy of 45 % on 200 inputs is 90 successes of 200 Bernoulli trials; its Wilson
score interval (Wilson 1927) keeps its coverage near the nominal level for small n and for
proportions near 0 or 1, where the normal ("Wald") interval collapses to a point. It is
conditional on the inputs being a sample from the test distribution and says nothing about a
stronger attack: the accuracy is an upper bound on the true robust accuracy, the interval is
the sampling uncertainty of that bound.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from robust.errors import ConfigError


def wilson(
    k: int | np.ndarray, n: int | np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of ``k`` successes in ``n`` trials (elementwise).

    (p̂ + z²/2n ∓ z·√(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n), z the two-sided normal quantile of
    ``confidence``.

    Raises:
        ConfigError: counts that are not 0 ≤ k ≤ n with n ≥ 1, or confidence outside (0, 1).

    Example:
        >>> wilson(90, 200)
        (array(0.38264...), array(0.51924...))
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), but got confidence={confidence}")
    k_arr, n_arr = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    if np.any(n_arr < 1) or np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ConfigError(f"counts must be 0 ≤ k ≤ n with n ≥ 1, but got k={k}, n={n}")
    z = ndtri(0.5 + confidence / 2)
    p = k_arr / n_arr
    centre = p + z * z / (2 * n_arr)
    half = z * np.sqrt(p * (1 - p) / n_arr + z * z / (4 * n_arr * n_arr))
    scale = 1 + z * z / n_arr
    low = np.where(k_arr == 0, 0.0, np.clip((centre - half) / scale, 0, 1))  # exact ends
    high = np.where(k_arr == n_arr, 1.0, np.clip((centre + half) / scale, 0, 1))
    return low, high
