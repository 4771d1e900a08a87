"""Retraining curves over seeds and what they say: best accuracy, inputs at the best, area
under the curve, and each metric against the random baseline, with 95 % CIs.

The seed reported one unseeded run per point and read the argmax off it (notes §5); with
several seeds every summary here is a mean over seeds with a t-distribution confidence
interval, ``mean ± t(0.975, n − 1) · s / √n`` (s: sample standard deviation), which is
undefined for one seed (NaN bounds).

Comparisons are **paired** by seed: seed s of every metric shares its shuffling, dropout and
(c1) initial weights, so the difference of metric and baseline is taken per seed first. For a
budget fraction b (default 0.3), the per-seed difference is the mean, over the steps whose
budget k satisfies 0 < k ≤ b·N, of accuracy(metric) − accuracy(baseline).

Each difference gets a paired t-test p-value and a TOST equivalence p-value against a margin
(default 0.01, one percentage point; :mod:`robust.retraining._inference`); :func:`compare`
Holm-adjusts both over the metrics it compares (one family per compared quantity), and the
verdict reads the adjusted values at α = 0.05: beats / worse than the baseline (difference
test rejected), equivalent to it (TOST rejected on both sides), else inconclusive. The
intervals themselves are per comparison (unadjusted).

With one original model every seed retrains from that original, pool and metric order, so
intervals and tests speak about that original only. With K independently trained originals
(each with its own attack, pool and orders) the unit is the original: each original's mean
over its seeds, and the intervals and tests are over those K means (t with K − 1 degrees of
freedom; :meth:`Curves.units`), so they cover the variation between originals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from robust.errors import ConfigError, DataError
from robust.retraining._inference import ALPHA, holm, paired_t, tost
from robust.retraining._protocol import QUANTITIES, SELECTION, Point

VERDICTS = (
    "beats {b}",
    "worse than {b}",
    "equivalent to {b}",
    "inconclusive",
    "no CI with one seed",
)
"""The verdicts of :func:`verdict`, with ``{b}`` the baseline's name. "inconclusive": neither
a difference nor equivalence is shown (never read it as "no difference")."""

MARGIN = 0.01
"""The default equivalence margin: one percentage point of accuracy."""


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values and its confidence interval [low, high] (NaN when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: NaN bounds become None."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in (
                ("mean", self.mean),
                ("ci_low", self.low),
                ("ci_high", self.high),
                ("n", self.n),
            )
        }

    def __str__(self) -> str:
        if math.isnan(self.low):
            return f"{self.mean:.4g}"
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}]"


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """The mean of ``values`` and its two-sided t-distribution confidence interval.

    Args:
        values: n ≥ 1 finite numbers (one per seed).
        confidence: in (0, 1).

    Returns:
        An :class:`Interval`; with one value its bounds are NaN, with zero spread both equal
        the mean.

    Raises:
        ConfigError: confidence outside (0, 1).
        DataError: no values, or a non-finite one.

    Example:
        >>> str(mean_ci([1.0, 2.0, 3.0]))  # 2 ± 4.303 · 1 / √3
        '2 [-0.4841, 4.484]'
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), but got {confidence=}")
    x = np.asarray(list(values), dtype=np.float64)
    if x.ndim != 1 or len(x) == 0 or not np.isfinite(x).all():
        raise DataError(f"values must be n ≥ 1 finite numbers, but got {x.tolist()}")
    mean = float(x.mean())
    if len(x) < 2:
        return Interval(mean, math.nan, math.nan, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return Interval(mean, mean - half, mean + half, len(x))


def auc(fraction: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Trapezoidal area under accuracy against the fraction of the pool used.

    Args:
        fraction: (T,) increasing budget fractions in [0, 1].
        accuracy: (..., T) accuracies at those fractions.

    Returns:
        (...,) areas; a curve that is 1 over all of [0, 1] has area 1. c1's curve starts at its
        first budget (no point at 0), c2/c3's at the original model (0).
    """
    fraction = np.asarray(fraction, dtype=np.float64)
    if fraction.ndim != 1 or np.any(np.diff(fraction) <= 0):
        raise DataError(f"fraction must be strictly increasing, but got {fraction.tolist()}")
    return np.trapezoid(np.asarray(accuracy, dtype=np.float64), fraction, axis=-1)


@dataclass(frozen=True)
class Curves:
    """One metric's curves: every quantity of every (seed, step).

    Attributes:
        seeds: the seed of each row.
        n_inputs: (T,) budget of each column (0 = the original model, c2/c3 only).
        values: quantity → (S, T) array; :data:`QUANTITIES`, ``fit_s`` and ``n_adversarial``,
            and :data:`~robust.retraining.SELECTION` when every point was scored on a
            selection set.
        originals: the original model of each row (:attr:`Point.original`); empty: all 0.
    """

    seeds: tuple[int, ...]
    n_inputs: np.ndarray
    values: Mapping[str, np.ndarray]
    originals: tuple[int, ...] = ()

    @classmethod
    def from_points(cls, points: Iterable[Point]) -> Curves:
        """Stack points (any order) into (original, seed) × step arrays.

        Raises:
            DataError: no points, or rows with different budgets.
        """
        by_row: dict[tuple[int, int], list[Point]] = {}
        for p in points:
            by_row.setdefault((p.original, p.seed), []).append(p)
        if not by_row:
            raise DataError("points must hold at least one point")
        keys = sorted(by_row)
        rows = [sorted(by_row[k], key=lambda p: p.step) for k in keys]
        n_inputs = [p.n_inputs for p in rows[0]]
        if any([p.n_inputs for p in row] != n_inputs for row in rows):
            raise DataError("every seed must have the same budget steps")
        selected = all(SELECTION in p.scores for row in rows for p in row)
        names = (*QUANTITIES, *((SELECTION,) if selected else ()), "fit_s", "n_adversarial")
        values = {
            q: np.array(
                [[p.scores[q] if q in p.scores else getattr(p, q) for p in r] for r in rows],
                dtype=np.float64,
            )
            for q in names
        }
        return cls(
            tuple(seed for _, seed in keys),
            np.asarray(n_inputs, dtype=np.int64),
            values,
            tuple(original for original, _ in keys),
        )

    @property
    def n_originals(self) -> int:
        """How many original models the rows retrain from."""
        return len(set(self.originals)) or 1

    def units(self, per_row: np.ndarray) -> np.ndarray:
        """The units the intervals and tests are over, from (S, ...) per-row values: the rows
        (seeds) with one original; with several, each original's mean over its seeds (a
        cluster mean, so the intervals cover the variation between originals, not just the
        seeds' within one)."""
        per_row = np.asarray(per_row, dtype=np.float64)
        if self.n_originals == 1:
            return per_row
        of = np.asarray(self.originals)
        return np.stack([per_row[of == o].mean(axis=0) for o in sorted(set(self.originals))])

    @property
    def selection(self) -> str:
        """The quantity the best step is chosen on: :data:`~robust.retraining.SELECTION`
        (validation) when the points have it, else ``accuracy_combined`` (test, the seed's)."""
        return SELECTION if SELECTION in self.values else "accuracy_combined"

    def mean(self, quantity: str = "accuracy_combined") -> np.ndarray:
        """(T,) mean over seeds."""
        return self.values[quantity].mean(axis=0)

    def ci(self, quantity: str = "accuracy_combined", confidence: float = 0.95) -> np.ndarray:
        """(2, T) lower and upper CI bounds over the units (:meth:`units`) at each step (NaN
        for one unit)."""
        bounds = [mean_ci(col, confidence) for col in self.units(self.values[quantity]).T]
        return np.array([[b.low for b in bounds], [b.high for b in bounds]])


def summarise(
    curves: Curves,
    pool_size: int,
    *,
    quantity: str = "accuracy_combined",
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """Per-seed figures of one metric, as means with CIs over seeds.

    Each seed's best step is the first one with the highest :attr:`Curves.selection`
    (validation accuracy when the curves have it; row 0 included), so the reported test
    figure is not chosen on the test set itself.

    Returns:
        ``best_accuracy`` (each seed's ``quantity`` at its best step), ``best_n_inputs`` (the
        budget of that step: the seed's "resource utilisation"), ``auc`` (:func:`auc` over
        ``n_inputs / pool_size``) and ``fit_s`` (each seed's total training time).
    """
    acc = curves.values[quantity]
    first_best = curves.values[curves.selection].argmax(axis=1)
    area = auc(curves.n_inputs / pool_size, acc)
    per_row = {
        "best_accuracy": acc[np.arange(len(acc)), first_best],
        "best_n_inputs": curves.n_inputs[first_best],
        "auc": area,
        "fit_s": curves.values["fit_s"].sum(axis=1),
    }
    return {k: mean_ci(curves.units(v), confidence) for k, v in per_row.items()}


def verdict(
    interval: Interval,
    baseline: str = "random",
    *,
    p_adjusted: float | None = None,
    p_equivalence: float | None = None,
    alpha: float = ALPHA,
) -> str:
    """What a paired difference says, one of :data:`VERDICTS`.

    Args:
        interval: the difference's mean and CI over seeds.
        baseline: its name in the verdict.
        p_adjusted: the difference test's (Holm-adjusted) p-value; None reads the interval
            instead (beats when its CI is above 0, worse when below).
        p_equivalence: the TOST (Holm-adjusted) p-value; None never says equivalent.
        alpha: the level of both tests.

    Returns:
        ``beats <baseline>`` / ``worse than <baseline>`` (difference shown, by the sign of the
        mean), ``equivalent to <baseline>`` (no difference shown, and TOST's p ≤ alpha),
        ``inconclusive`` (neither) or ``no CI with one seed``.
    """
    if interval.n < 2:
        return VERDICTS[4]
    if p_adjusted is None:
        up, down = interval.low > 0, interval.high < 0
    else:
        up = down = p_adjusted <= alpha
    if up and interval.mean > 0:
        return VERDICTS[0].format(b=baseline)
    if down and interval.mean < 0:
        return VERDICTS[1].format(b=baseline)
    if p_equivalence is not None and p_equivalence <= alpha:
        return VERDICTS[2].format(b=baseline)
    return VERDICTS[3]


def budget_mask(n_inputs: np.ndarray, pool_size: int, budget: float) -> np.ndarray:
    """(T,) True at the steps compared: 0 < n_inputs ≤ budget · pool_size."""
    n_inputs = np.asarray(n_inputs)
    return (n_inputs > 0) & (n_inputs <= budget * pool_size)


@dataclass(frozen=True)
class Comparison:
    """A metric against the baseline at small budgets, paired by seed.

    Attributes:
        metric, baseline: the two metric names.
        budget: the largest fraction of the pool compared.
        n_inputs: the budgets compared.
        per_seed: each unit's mean difference over those budgets: per seed, or with several
            originals per original (the mean over its seeds; :meth:`Curves.units`).
        interval: mean and CI of ``per_seed`` (per comparison, not adjusted).
        verdict: :func:`verdict` from ``p_holm`` and ``p_tost_holm``.
        confidence: the interval's confidence level.
        quantity: the compared quantity (``accuracy_combined``, ``_clean`` or
            ``_adversarial``).
        p_value: the paired t-test's two-sided p-value (NaN with one seed).
        p_holm: ``p_value`` Holm-adjusted over the family it was compared in.
        margin: the equivalence margin.
        p_tost, p_tost_holm: TOST's p-value for |difference| < margin, raw and adjusted.
        unit: what ``per_seed`` holds one value per: ``seed``, or ``original`` when the curves
            retrain from several originals.
    """

    metric: str
    baseline: str
    budget: float
    n_inputs: tuple[int, ...]
    per_seed: tuple[float, ...]
    interval: Interval
    verdict: str
    confidence: float = 0.95
    quantity: str = "accuracy_combined"
    p_value: float = math.nan
    p_holm: float = math.nan
    margin: float = MARGIN
    p_tost: float = math.nan
    p_tost_holm: float = math.nan
    unit: str = "seed"

    def line(self, quantity: str | None = None) -> str:
        """One human-readable sentence (the pipeline logs it)."""
        i = self.interval
        level = f"{self.confidence * 100:g} % CI"
        ci = "" if i.n < 2 else f", {level} [{i.low:+.4f}, {i.high:+.4f}]"
        tests = (
            ""
            if i.n < 2
            else f", p {self.p_value:.3g} (Holm {self.p_holm:.3g}), equivalence within "
            f"±{self.margin:g} p {self.p_tost:.3g} (Holm {self.p_tost_holm:.3g})"
        )
        budgets = ", ".join(map(str, self.n_inputs))
        return (
            f"{self.metric} vs {self.baseline} at ≤ {self.budget:.0%} of the pool "
            f"({budgets} inputs): {quantity or self.quantity} {i.mean:+.4f}{ci} over {i.n} "
            f"{self.unit}{'s' if i.n != 1 else ''}{tests} → {self.verdict}"
        )

    def as_dict(self) -> dict:
        """JSON-ready: NaN p-values become None."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "budget": self.budget,
            "n_inputs": list(self.n_inputs),
            "per_seed": list(self.per_seed),
            **self.interval.as_dict(),
            "verdict": self.verdict,
            "quantity": self.quantity,
            "p_value": num(self.p_value),
            "p_holm": num(self.p_holm),
            "margin": self.margin,
            "p_tost": num(self.p_tost),
            "p_tost_holm": num(self.p_tost_holm),
            "unit": self.unit,
        }


def compare(
    curves: Mapping[str, Curves],
    pool_size: int,
    *,
    baseline: str = "random",
    budget: float = 0.3,
    quantity: str = "accuracy_combined",
    confidence: float = 0.95,
    margin: float = MARGIN,
    alpha: float = ALPHA,
) -> dict[str, Comparison]:
    """Every metric but the baseline against the baseline, at budgets ≤ ``budget`` of the pool.

    The p-values (paired t-test, TOST) are Holm-adjusted over the metrics compared here, and
    the verdicts read the adjusted values (:func:`verdict`).

    Args:
        curves: metric → its :class:`Curves`; all with the same seeds and budgets.
        pool_size: N (c3: the adversarial part's size).
        baseline: the metric compared against.
        budget: fraction of the pool in (0, 1].
        quantity: the compared quantity.
        confidence: of the intervals.
        margin: the equivalence margin (> 0, in accuracy: 0.01 = one percentage point).
        alpha: the level of the verdicts.

    Returns:
        metric → :class:`Comparison`, in the order of ``curves``.

    Raises:
        ConfigError: no baseline curves, a budget outside (0, 1], no step within it, or a
            margin that is not positive.
        DataError: curves with different seeds or budgets.
    """
    if baseline not in curves:
        raise ConfigError(
            f"baseline must be one of the metrics {', '.join(curves)}, but got {baseline=}"
        )
    if not 0 < budget <= 1:
        raise ConfigError(f"budget must be in (0, 1], but got {budget=}")
    if not (math.isfinite(margin) and margin > 0):
        raise ConfigError(f"margin must be a positive number, but got {margin=}")
    base = curves[baseline]
    for name, c in curves.items():
        paired = c.seeds == base.seeds and c.originals == base.originals
        if not paired or not np.array_equal(c.n_inputs, base.n_inputs):
            raise DataError(f"{name} and {baseline} must share seeds and budgets to be paired")
    mask = budget_mask(base.n_inputs, pool_size, budget)
    if not mask.any():
        smallest = base.n_inputs[base.n_inputs > 0].min()
        raise ConfigError(
            f"no budget step is within {budget=} of the pool (the smallest is {smallest} of "
            f"{pool_size} inputs); use more steps or a larger budget"
        )
    names = [name for name in curves if name != baseline]
    per_row = np.array(
        [
            (curves[n].values[quantity][:, mask] - base.values[quantity][:, mask]).mean(axis=1)
            for n in names
        ],
        dtype=np.float64,
    ).reshape(len(names), len(base.seeds))
    diffs = base.units(per_row.T).T  # (metrics, units): per seed, or per original
    p, p_tost = paired_t(diffs).p_value, tost(diffs, margin).p_value
    p_holm, p_tost_holm = holm(p), holm(p_tost)
    out = {}
    for i, name in enumerate(names):
        interval = mean_ci(diffs[i], confidence)
        adjusted = {"p_adjusted": p_holm[i], "p_equivalence": p_tost_holm[i], "alpha": alpha}
        out[name] = Comparison(
            name,
            baseline,
            budget,
            tuple(int(k) for k in base.n_inputs[mask]),
            tuple(float(d) for d in diffs[i]),
            interval,
            verdict(interval, baseline, **adjusted),
            confidence,
            quantity,
            float(p[i]),
            float(p_holm[i]),
            margin,
            float(p_tost[i]),
            float(p_tost_holm[i]),
            "original" if base.n_originals > 1 else "seed",
        )
    return out
