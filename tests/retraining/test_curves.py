"""Curves over seeds, t-intervals, AUC and the comparison with random, against hand-computed
values (robust/retraining/_curves.py)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from robust.errors import ConfigError, DataError
from robust.retraining import (
    QUANTITIES,
    SELECTION,
    Curves,
    Interval,
    Point,
    auc,
    budget_mask,
    compare,
    holm,
    mean_ci,
    summarise,
    verdict,
)

from .conftest import curves

T2, T1 = 4.302652729749464, 12.706204736174698  # t(0.975) with 2 and 1 degrees of freedom


def test_mean_ci_against_the_t_table():
    i = mean_ci([1.0, 2.0, 3.0])
    assert (i.mean, i.n) == (2.0, 3)
    assert i.low == pytest.approx(2 - T2 / math.sqrt(3)) and i.low == pytest.approx(-0.48414, 1e-4)
    assert i.high == pytest.approx(2 + T2 / math.sqrt(3))
    two = mean_ci([0.1, 0.3])  # s = 0.1414, half = 12.706 · 0.1414 / √2 = 1.2706
    assert (two.low, two.high) == pytest.approx((0.2 - 1.2706205, 0.2 + 1.2706205))
    ninety = mean_ci([1.0, 2.0, 3.0], confidence=0.9)  # t(0.95, 2) = 2.92
    assert ninety.high == pytest.approx(2 + 2.919985580355516 / math.sqrt(3))


def test_mean_ci_with_one_value_or_no_spread():
    one = mean_ci([0.7])
    assert one.mean == 0.7 and one.n == 1 and math.isnan(one.low) and math.isnan(one.high)
    assert one.as_dict() == {"mean": 0.7, "ci_low": None, "ci_high": None, "n": 1}
    flat = mean_ci([0.5, 0.5, 0.5])
    assert (flat.low, flat.mean, flat.high) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "message"),
    [
        ([], {}, DataError, "values must be n ≥ 1 finite numbers, but got []"),
        ([1.0, math.nan], {}, DataError, "values must be n ≥ 1 finite numbers"),
        ([1.0], {"confidence": 1.0}, ConfigError, "confidence must be in (0, 1), but got"),
        ([1.0], {"confidence": 0.0}, ConfigError, "confidence must be in (0, 1), but got"),
    ],
)
def test_mean_ci_rejects(values, kwargs, error, message):
    with pytest.raises(error, match=r"^" + re.escape(message)):
        mean_ci(values, **kwargs)


def test_auc_is_the_trapezoid_over_the_pool_fraction():
    assert auc([0, 0.5, 1], [0.5, 0.7, 0.9]) == pytest.approx(0.25 * 1.2 + 0.25 * 1.6)
    rows = auc([0.25, 1.0], [[1.0, 1.0], [0.0, 1.0]])
    assert rows.tolist() == pytest.approx([0.75, 0.375])
    with pytest.raises(DataError, match=r"^fraction must be strictly increasing"):
        auc([0, 0.5, 0.5], [1, 1, 1])


def test_curves_stack_points_by_seed_and_step():
    c = curves([0, 10, 20], [[0.5, 0.6, 0.7], [0.5, 0.8, 0.9]], [[0, 1, 2], [0, 3, 4]])
    assert c.seeds == (0, 1) and c.n_inputs.tolist() == [0, 10, 20]
    assert c.values["accuracy_combined"].tolist() == [[0.5, 0.6, 0.7], [0.5, 0.8, 0.9]]
    assert c.values["fit_s"].tolist() == [[0, 1, 2], [0, 3, 4]]
    assert c.values["n_adversarial"].tolist() == [[0, 10, 20]] * 2
    assert c.mean().tolist() == pytest.approx([0.5, 0.7, 0.8])
    low, high = c.ci()
    assert low[0] == high[0] == 0.5 and high[2] == pytest.approx(0.8 + T1 * 0.1 / 1)
    with pytest.raises(DataError, match=r"^every seed must have the same budget steps"):
        Curves.from_points(
            [
                Point(0, 1, 10, 0, 0.0, dict.fromkeys(QUANTITIES, 0)),
                Point(1, 1, 11, 0, 0.0, dict.fromkeys(QUANTITIES, 0)),
            ]
        )


def test_summarise_against_hand_computed_values():
    c = curves(
        [0, 10, 20, 40],
        [[0.5, 0.6, 0.8, 0.8], [0.5, 0.7, 0.6, 0.9]],
        [[0, 1, 2, 3], [0, 2, 2, 2]],
    )
    s = summarise(c, pool_size=40)
    assert s["best_accuracy"].mean == pytest.approx(0.85)
    assert s["best_accuracy"].high == pytest.approx(0.85 + T1 * 0.05 / 1)  # s = 0.0707, /√2
    assert s["best_n_inputs"].mean == 30  # seed 0 reaches 0.8 first at 20, seed 1 at 40
    # seed 0: .25·(.5+.6)/2 + .25·(.6+.8)/2 + .5·(.8+.8)/2 = .7125; seed 1: .6875
    assert s["auc"].mean == pytest.approx(0.7)
    assert s["auc"].low == pytest.approx(0.7 - T1 * 0.0125)
    assert (s["fit_s"].mean, s["fit_s"].low, s["fit_s"].high) == (6.0, 6.0, 6.0)


def test_summarise_reads_the_test_accuracy_at_the_step_chosen_on_validation():
    """Test accuracy peaks at 20 inputs; validation at 40 (seed 0) and at 10 and 40 (seed 1,
    a tie: the first counts): the best is read there."""
    test = [[0.5, 0.6, 0.9, 0.7], [0.5, 0.6, 0.8, 0.75]]
    val = [[0.4, 0.5, 0.6, 0.7], [0.4, 0.8, 0.6, 0.8]]
    points = [
        Point(s, j, k, 0, 1.0, dict.fromkeys(QUANTITIES, test[s][j]) | {SELECTION: val[s][j]})
        for s in (0, 1)
        for j, k in enumerate([0, 10, 20, 40])
    ]
    c = Curves.from_points(points)
    assert c.selection == SELECTION and c.values[SELECTION].tolist() == val
    s = summarise(c, pool_size=40)
    assert s["best_accuracy"].mean == pytest.approx((0.7 + 0.6) / 2)  # seed 1: first of ties
    assert s["best_accuracy"].mean != pytest.approx((0.9 + 0.8) / 2)  # what test would pick
    assert s["best_n_inputs"].mean == pytest.approx((40 + 10) / 2)
    without = curves([0, 10, 20, 40], test)
    assert without.selection == "accuracy_combined" and SELECTION not in without.values
    assert summarise(without, 40)["best_accuracy"].mean == pytest.approx(0.85)


def _clustered(acc: dict[tuple[int, int], list[float]], n_inputs=(10, 20)) -> Curves:
    """Curves from (original, seed) → a row of combined accuracy (other quantities copy it)."""
    return Curves.from_points(
        Point(seed, j + 1, k, 0, 1.0, dict.fromkeys(QUANTITIES, a), original=o)
        for (o, seed), row in acc.items()
        for j, (k, a) in enumerate(zip(n_inputs, row, strict=True))
    )


def test_with_several_originals_the_unit_is_the_original():
    """Two originals × two seeds: intervals and tests are over the two originals' means."""
    metric = _clustered(
        {(0, 0): [0.6, 0.7], (0, 1): [0.8, 0.9], (1, 2): [0.5, 0.5], (1, 3): [0.7, 0.9]}
    )
    random = _clustered(
        {(0, 0): [0.5, 0.6], (0, 1): [0.6, 0.7], (1, 2): [0.5, 0.5], (1, 3): [0.6, 0.6]}
    )
    assert metric.originals == (0, 0, 1, 1) and metric.n_originals == 2
    units = metric.units(metric.values["accuracy_combined"])
    np.testing.assert_allclose(units, [[0.7, 0.8], [0.6, 0.7]])
    best = summarise(metric, pool_size=20)["best_accuracy"]
    assert best.n == 2 and best.mean == pytest.approx(((0.7 + 0.9) / 2 + (0.5 + 0.9) / 2) / 2)
    low, high = metric.ci()
    assert high[0] - low[0] == pytest.approx(2 * T1 * 0.1 / 2)  # two means 0.7, 0.6: s = 0.0707
    (c,) = compare({"m": metric, "random": random}, 20, budget=1.0).values()
    # per original: mean over seeds and both budgets of the difference
    per = [np.mean([0.1, 0.1, 0.2, 0.2]), np.mean([0.0, 0.0, 0.1, 0.3])]
    assert c.per_seed == pytest.approx(per) and c.interval.n == 2 and c.unit == "original"
    assert c.p_value == pytest.approx(stats.ttest_1samp(per, 0).pvalue)
    assert "over 2 originals" in c.line() and c.as_dict()["unit"] == "original"
    one = _clustered({(0, 0): [0.6, 0.7], (0, 1): [0.8, 0.9]})
    assert one.n_originals == 1 and one.units(np.ones((2, 3))).shape == (2, 3)
    with pytest.raises(DataError, match="must share seeds and budgets"):
        compare({"m": metric, "random": _clustered({(0, 0): [0.5, 0.6], (1, 1): [0.5, 0.5]})}, 20)


def test_budget_mask_includes_the_boundary_and_never_row_0():
    assert budget_mask(np.array([0, 6, 12, 13, 40]), 40, 0.3).tolist() == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_compare_pairs_seeds_over_the_small_budgets():
    n = [0, 10, 20, 40]
    base = curves(n, [[0.5, 0.55, 0.7, 0.8], [0.5, 0.6, 0.65, 0.9]])
    metric = curves(n, [[0.5, 0.6, 0.8, 0.1], [0.5, 0.7, 0.6, 0.1]])  # the 40 step is ignored
    (cmp,) = compare({"random": base, "deepgini": metric}, 40, budget=0.5).values()
    # seed 0: (.05 + .1) / 2 = .075; seed 1: (.1 − .05) / 2 = .025
    assert cmp.metric == "deepgini" and cmp.n_inputs == (10, 20)
    assert cmp.per_seed == pytest.approx((0.075, 0.025))
    assert cmp.interval.mean == pytest.approx(0.05)
    assert cmp.interval.high == pytest.approx(0.05 + T1 * 0.025)  # s = .0354, /√2
    # t = .05 / .025 = 2 on 1 df; TOST: t₋ = .06 / .025 = 2.4, t₊ = .04 / .025 = 1.6
    assert cmp.p_value == pytest.approx(2 * stats.t.sf(2.0, 1))  # .2952
    assert cmp.p_value == pytest.approx(stats.ttest_rel([0.7, 0.65], [0.625, 0.625]).pvalue)
    assert cmp.p_holm == cmp.p_value  # a family of one
    assert cmp.p_tost == pytest.approx(max(stats.t.sf(2.4, 1), stats.t.cdf(1.6, 1)))  # .8222
    assert cmp.verdict == "inconclusive" and cmp.quantity == "accuracy_combined"
    assert cmp.line() == (
        "deepgini vs random at ≤ 50% of the pool (10, 20 inputs): accuracy_combined +0.0500, "
        "95 % CI [-0.2677, +0.3677] over 2 seeds, p 0.295 (Holm 0.295), equivalence within "
        "±0.01 p 0.822 (Holm 0.822) → inconclusive"
    )


@pytest.mark.parametrize(("sign", "expected"), [(1, "beats random"), (-1, "worse than random")])
def test_a_consistent_difference_is_significant(sign, expected):
    n = [10, 20, 30, 100]
    base = np.array([[0.5, 0.6, 0.7, 0.9]] * 3)
    gain = np.array([[0.10], [0.12], [0.11]])
    out = compare(
        {"random": curves(n, base), "entropy": curves(n, base + sign * gain)}, 100, budget=0.3
    )
    i = out["entropy"].interval
    assert i.mean == pytest.approx(sign * 0.11)
    assert (i.high - i.low) / 2 == pytest.approx(T2 * 0.01 / math.sqrt(3))
    assert out["entropy"].verdict == expected and out["entropy"].n_inputs == (10, 20, 30)


def test_verdicts():
    assert verdict(Interval(0.1, 0.01, 0.2, 3)) == "beats random"  # from the CI
    assert verdict(Interval(-0.1, -0.2, -0.01, 3), "lsa") == "worse than lsa"
    assert verdict(Interval(0.1, 0.0, 0.2, 3)) == "inconclusive"
    assert verdict(Interval(0.1, math.nan, math.nan, 1)) == "no CI with one seed"
    # from (adjusted) p-values: the CI is not read
    assert verdict(Interval(0.1, 0.01, 0.2, 3), p_adjusted=0.06) == "inconclusive"
    assert verdict(Interval(0.1, -0.01, 0.2, 3), p_adjusted=0.05) == "beats random"
    assert verdict(Interval(-0.1, -0.2, 0.01, 3), p_adjusted=0.01) == "worse than random"
    eq = Interval(0.001, -0.002, 0.004, 3)
    assert verdict(eq, p_adjusted=0.5, p_equivalence=0.04) == "equivalent to random"
    assert verdict(eq, "lsa", p_adjusted=0.5, p_equivalence=0.051) == "inconclusive"
    assert verdict(eq, p_adjusted=0.5, p_equivalence=0.04, alpha=0.01) == "inconclusive"
    assert verdict(Interval(0.1, math.nan, math.nan, 1), p_adjusted=0.0) == "no CI with one seed"
    one = compare(
        {"random": curves([5, 10], [[0.5, 0.6]]), "nc": curves([5, 10], [[0.6, 0.6]])},
        10,
        budget=0.5,
    )
    assert one["nc"].verdict == "no CI with one seed" and "over 1 seed →" in one["nc"].line()


def test_compare_holm_adjusts_over_its_metrics_and_the_verdict_reads_the_adjusted_p():
    n = [10, 20, 100]
    base = np.array([[0.5, 0.6, 0.9]] * 3)
    gain = np.array([[0.08], [0.12], [0.16]])  # t = .12 / (.04 / √3) = 5.196, p = .0351
    alone = compare({"random": curves(n, base), "a": curves(n, base + gain)}, 100)
    assert alone["a"].p_value == pytest.approx(0.0350987, abs=1e-6)
    assert alone["a"].verdict == "beats random"
    pair = compare(
        {"random": curves(n, base), "a": curves(n, base + gain), "b": curves(n, base + gain)},
        100,
    )
    assert pair["a"].p_holm == pytest.approx(2 * alone["a"].p_value)  # .0702 > .05
    assert pair["a"].interval.low > 0 and pair["a"].verdict == "inconclusive"
    assert [c.p_holm for c in pair.values()] == pytest.approx(
        holm([c.p_value for c in pair.values()]).tolist()
    )


def test_compare_says_equivalent_only_when_tost_rejects_both_sides():
    n = [10, 20, 100]
    base = np.array([[0.5, 0.6, 0.9]] * 3)
    tiny = np.array([[0.001], [0.002], [0.003]])  # p = .074; TOST within ±.01: p = .0026
    out = compare({"random": curves(n, base), "m": curves(n, base + tiny)}, 100)
    assert out["m"].p_tost == pytest.approx(max(stats.t.sf(20.7846, 2), stats.t.cdf(-13.8564, 2)))
    assert out["m"].p_value == pytest.approx(0.0741799, abs=1e-6)
    assert out["m"].verdict == "equivalent to random"
    # within ±.002 the upper test has t₊ = (.002 − .002) / se = 0: not rejected
    narrow = compare({"random": curves(n, base), "m": curves(n, base + tiny)}, 100, margin=0.002)
    assert narrow["m"].p_tost > 0.05 and narrow["m"].margin == 0.002
    assert narrow["m"].verdict == "inconclusive"
    with pytest.raises(ConfigError, match=r"^margin must be a positive number, but got margin=0"):
        compare({"random": curves(n, base), "m": curves(n, base)}, 100, margin=0)


def test_compare_rejects():
    c = curves([10, 20], [[0.5, 0.6]])
    with pytest.raises(
        ConfigError,
        match=r"^no budget step is within budget=0.3 of the pool "
        r"\(the smallest is 10 of 20 inputs\)",
    ):
        compare({"random": c, "nc": c}, 20, budget=0.3)
    with pytest.raises(ConfigError, match=r"^baseline must be one of the metrics nc"):
        compare({"nc": c}, 20)
    with pytest.raises(ConfigError, match=r"^budget must be in \(0, 1\]"):
        compare({"random": c, "nc": c}, 20, budget=0)
    other = curves([10, 15], [[0.5, 0.6]])
    with pytest.raises(DataError, match=r"^nc and random must share seeds and budgets"):
        compare({"random": c, "nc": other}, 20, budget=1)


def test_an_interval_prints_its_mean_and_bounds():
    assert str(mean_ci([0.7])) == "0.7"  # one seed: no bounds
    assert str(mean_ci([1.0, 2.0, 3.0])) == "2 [-0.4841, 4.484]"


def test_the_confidence_level_is_passed_on_everywhere():
    c = curves([0, 10, 20], [[0.5, 0.6, 0.7], [0.5, 0.65, 0.8], [0.5, 0.62, 0.66]])
    r = curves([0, 10, 20], [[0.5, 0.55, 0.6], [0.5, 0.6, 0.6], [0.5, 0.58, 0.61]])
    col = c.values["accuracy_combined"][:, 1]
    low, high = c.ci(confidence=0.9)[:, 1]
    assert (low, high) == (mean_ci(col, 0.9).low, mean_ci(col, 0.9).high)
    assert summarise(c, 100, confidence=0.9)["auc"] == mean_ci(
        auc(c.n_inputs / 100, c.values["accuracy_combined"]), 0.9
    )
    (cmp,) = compare({"m": c, "random": r}, 100, budget=0.2, confidence=0.9).values()
    assert cmp.interval == mean_ci(cmp.per_seed, 0.9)
    assert ", 90 % CI [" in cmp.line() and "95 %" not in cmp.line()
    (default,) = compare({"m": c, "random": r}, 100, budget=0.2).values()
    assert ", 95 % CI [" in default.line()


def test_verdict_boundaries_and_the_baseline_name():
    assert verdict(Interval(-1.0, -2.0, 0.0, 3)) == "inconclusive"
    assert verdict(Interval(1.0, 0.0, 2.0, 3)) == "inconclusive"
    assert verdict(Interval(1.0, 0.5, 2.0, 3), "gini") == "beats gini"
    assert verdict(Interval(-1.0, -2.0, -0.5, 3), "gini") == "worse than gini"
    assert verdict(Interval(1.0, math.nan, math.nan, 1)) == "no CI with one seed"


def test_budget_mask_keeps_a_one_input_step():
    assert budget_mask(np.array([0, 1, 2, 6]), 10, 0.5).tolist() == [False, True, True, False]


def test_compare_defaults_and_limits():
    c = curves([0, 10, 30, 60], [[0.5, 0.7, 0.8, 0.9], [0.5, 0.72, 0.81, 0.9]])
    r = curves([0, 10, 30, 60], [[0.5, 0.6, 0.7, 0.9], [0.5, 0.61, 0.7, 0.9]])
    (default,) = compare({"m": c, "random": r}, 100).values()
    assert default.budget == 0.3 and default.n_inputs == (10, 30)
    (vs_gini,) = compare({"m": c, "gini": r}, 100, baseline="gini").values()
    assert vs_gini.verdict == "beats gini" and vs_gini.line().endswith("→ beats gini")
    with pytest.raises(ConfigError, match=r"^budget must be in \(0, 1\]"):
        compare({"m": c, "random": r}, 100, budget=1.5)
    assert default.as_dict() == {
        "metric": "m", "baseline": "random", "budget": 0.3, "n_inputs": [10, 30],
        "per_seed": list(default.per_seed), "mean": default.interval.mean,
        "ci_low": default.interval.low, "ci_high": default.interval.high, "n": 2,
        "verdict": default.verdict, "quantity": "accuracy_combined",
        "p_value": default.p_value, "p_holm": default.p_holm, "margin": 0.01,
        "p_tost": default.p_tost, "p_tost_holm": default.p_tost_holm, "unit": "seed",
    }  # fmt: skip
    one = compare({"m": curves([10], [[0.6]]), "random": curves([10], [[0.5]])}, 100).values()
    assert [c.as_dict()["p_value"] for c in one] == [None]  # NaN → None (JSON)
