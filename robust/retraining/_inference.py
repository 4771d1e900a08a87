"""Tests on paired differences: the paired t-test, Holm's step-down adjustment and the
equivalence test TOST (two one-sided t-tests), as small pure numpy/scipy functions.

A paired comparison reduces to the per-seed differences d₁ … dₙ (metric − baseline). With
mean d̄, sample standard deviation s and standard error se = s / √n, the paired t-test of
"no difference" has t = d̄ / se on n − 1 degrees of freedom (``scipy.stats.ttest_rel`` of the
two samples, ``ttest_1samp`` of the differences). TOST with margin δ tests "the difference is
at least δ away from 0" with two one-sided tests, t₋ = (d̄ + δ) / se (H₀: μ ≤ −δ) and
t₊ = (d̄ − δ) / se (H₀: μ ≥ δ); its p-value is the larger of the two, so equivalence (|μ| < δ)
is accepted only when both sides are rejected.

Degenerate cases: one difference (n < 2) gives NaN; zero spread (s = 0) makes every t
infinite in the sign of its numerator (p = 0 or 1), and 0 / 0 (d̄ = 0, or d̄ = ±δ in TOST)
counts as no evidence (p = 1). NaN p-values are left out of Holm's family and stay NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from robust.errors import ConfigError

ALPHA = 0.05
"""The level every verdict uses, on Holm-adjusted p-values."""


class TTest(NamedTuple):
    """Statistics and p-values along the last axis (NaN where n < 2)."""

    statistic: np.ndarray
    p_value: np.ndarray


class Tost(NamedTuple):
    """TOST statistics (t₋ against −margin, t₊ against +margin) and its p-value, max(p₋, p₊)."""

    t_lower: np.ndarray
    t_upper: np.ndarray
    p_value: np.ndarray


def _moments(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean, standard error and n of ``d`` along its last axis."""
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[-1]
    if n < 2:
        nan = np.full(d.shape[:-1], np.nan)
        return (d.mean(axis=-1) if n else nan), nan, n
    return d.mean(axis=-1), d.std(axis=-1, ddof=1) / np.sqrt(n), n


def _t(num: np.ndarray, se: np.ndarray) -> np.ndarray:
    """num / se with s = 0 handled: ±inf in the sign of num, 0 for 0 / 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.asarray(num / se, dtype=np.float64)
    return np.where((se == 0) & (num == 0), 0.0, t)


def paired_t(differences: np.ndarray) -> TTest:
    """Two-sided paired t-test of mean difference 0.

    Args:
        differences: (..., n) per-pair differences (metric − baseline), one row per test.

    Returns:
        :class:`TTest` of shape (...,): t = d̄ / (s / √n) and its two-sided p on n − 1 degrees
        of freedom; NaN for n < 2; p = 0 for a constant non-zero difference, 1 for all zeros.

    Example:
        >>> round(float(paired_t([0.1, 0.2, 0.3]).p_value), 4)  # t = 0.2 / (0.1 / √3) = 3.464
        0.0742
    """
    from scipy import stats

    mean, se, n = _moments(differences)
    t = _t(mean, se)
    p = np.where(t == 0, 1.0, 2 * stats.t.sf(np.abs(t), max(n - 1, 1)))
    return TTest(t, np.where(np.isnan(se), np.nan, p))


def tost(differences: np.ndarray, margin: float) -> Tost:
    """Two one-sided paired t-tests for equivalence within ±``margin``.

    Args:
        differences: (..., n) per-pair differences, one row per test.
        margin: δ > 0, in the differences' unit (0.01 = one percentage point of accuracy).

    Returns:
        :class:`Tost` of shape (...,): t₋ = (d̄ + δ) / se with p₋ = P(T > t₋), t₊ = (d̄ − δ) / se
        with p₊ = P(T < t₊), and p = max(p₋, p₊); NaN for n < 2. A p below α says |μ| < δ at
        level α.

    Raises:
        ConfigError: a margin that is not positive and finite.

    Example:
        >>> round(float(tost([0.001, 0.002, 0.003], 0.01).p_value), 5)  # t₋ 20.78, t₊ −13.86
        0.00258
    """
    from scipy import stats

    if not (np.isfinite(margin) and margin > 0):
        raise ConfigError(f"margin must be a positive number, but got {margin=}")
    mean, se, n = _moments(differences)
    t_lower, t_upper = _t(mean + margin, se), _t(mean - margin, se)
    df = max(n - 1, 1)
    p_lower = np.where(t_lower == 0, 1.0, stats.t.sf(t_lower, df))
    p_upper = np.where(t_upper == 0, 1.0, stats.t.cdf(t_upper, df))
    p = np.where(np.isnan(se), np.nan, np.maximum(p_lower, p_upper))
    return Tost(t_lower, t_upper, p)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, controlling the family-wise error rate.

    With the m finite p-values sorted, p₍₁₎ ≤ … ≤ p₍ₘ₎, the adjusted value of p₍ᵢ₎ is
    min(1, maxⱼ≤ᵢ (m − j + 1) · p₍ⱼ₎); a test is rejected at level α when its adjusted value is
    ≤ α (Holm 1979). Valid under any dependence between the tests.

    Args:
        p_values: any shape; the whole array is one family. NaN entries are not tests: they
            stay NaN and do not count in m.

    Returns:
        The adjusted p-values, same shape.

    Example:
        >>> holm([0.01, 0.04, 0.03, 0.005]).tolist()
        [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    out = np.full(flat.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(flat))
    m = len(finite)
    if m:
        order = finite[np.argsort(flat[finite], kind="stable")]
        scaled = (m - np.arange(m)) * flat[order]
        out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out.reshape(p.shape)
