"""The paired t-test, TOST and Holm's adjustment against hand-computed values and scipy
(robust/retraining/_inference.py)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from robust.errors import ConfigError
from robust.retraining import holm, paired_t, tost


def _holm_by_hand(p):
    """Holm (1979) written out: sort, scale by m − i, running maximum, cap at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def test_holm_on_a_hand_computed_family():
    # sorted: .005·4 = .02, .01·3 = .03, .03·2 = .06, .04·1 = .04 → max(.06, .04) = .06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, 0.6]) == pytest.approx([0.4, 0.6])
    assert holm([0.5, 0.9, 0.6]).tolist() == [1.0, 1.0, 1.0]  # capped at 1
    assert holm([0.03]).tolist() == [0.03]  # a family of one is not adjusted


def test_holm_matches_the_written_out_procedure_and_keeps_shape_and_nan():
    rng = np.random.default_rng(0)
    for m in (2, 5, 15):
        p = rng.uniform(0, 0.2, m).tolist()
        assert holm(p) == pytest.approx(_holm_by_hand(p))
    grid = np.array([[0.01, np.nan], [0.04, 0.03]])
    out = holm(grid)  # NaN is no test: m = 3
    assert out.shape == (2, 2) and math.isnan(out[0, 1])
    assert out[~np.isnan(grid)] == pytest.approx(_holm_by_hand([0.01, 0.04, 0.03]))
    assert holm([]).shape == (0,) and np.isnan(holm([np.nan])).all()


def test_holm_ties_and_monotonicity():
    p = [0.01, 0.01, 0.02]  # .01·3, .01·2 → .03 both; .02·1 → max(.03, .02)
    assert holm(p) == pytest.approx([0.03, 0.03, 0.03])
    adjusted = holm([0.001, 0.2, 0.01, 0.04, 0.03])
    order = np.argsort([0.001, 0.2, 0.01, 0.04, 0.03])
    assert np.all(np.diff(adjusted[order]) >= 0)


def test_paired_t_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.7, 0.05, (4, 5)), rng.normal(0.68, 0.05, (4, 5))
    got = paired_t(a - b)
    ref = stats.ttest_rel(a, b, axis=1)
    assert got.statistic == pytest.approx(ref.statistic) and got.p_value.shape == (4,)
    assert got.p_value == pytest.approx(ref.pvalue)
    one = stats.ttest_1samp([0.075, 0.025], 0.0)
    assert paired_t([0.075, 0.025]).p_value == pytest.approx(one.pvalue)


def test_paired_t_by_hand_and_degenerate_cases():
    # d = .1, .2, .3: mean .2, s .1, t = .2 / (.1 / √3) = 3.4641, p = 2·P(T₂ > 3.4641)
    t = paired_t([0.1, 0.2, 0.3])
    assert float(t.statistic) == pytest.approx(2 * math.sqrt(3))
    assert float(t.p_value) == pytest.approx(0.0741799, abs=1e-6)
    assert math.isnan(paired_t([0.3]).p_value) and math.isnan(paired_t([0.3]).statistic)
    assert float(paired_t([0.25, 0.25, 0.25]).p_value) == 0.0  # constant gain: t = +inf
    assert float(paired_t([-0.5, -0.5]).statistic) == -math.inf
    assert float(paired_t([0.1, 0.1, 0.1]).p_value) < 1e-20  # s is a rounding error
    assert float(paired_t([0.0, 0.0]).p_value) == 1.0  # 0 / 0: no evidence


def test_tost_by_hand():
    # d = .001, .002, .003: mean .002, se = .001 / √3 = 5.7735e-4
    # t₋ = (.002 + .01) / se = 20.7846, t₊ = (.002 − .01) / se = −13.8564
    r = tost([0.001, 0.002, 0.003], 0.01)
    assert float(r.t_lower) == pytest.approx(20.7846097)
    assert float(r.t_upper) == pytest.approx(-13.8564065)
    p_lower, p_upper = stats.t.sf(20.7846097, 2), stats.t.cdf(-13.8564065, 2)
    assert float(r.p_value) == pytest.approx(max(p_lower, p_upper))
    assert float(r.p_value) < 0.05  # within ±1 pp: equivalent


def test_tost_equals_two_one_sided_scipy_tests():
    rng = np.random.default_rng(2)
    d = rng.normal(0.004, 0.006, (3, 4))
    r = tost(d, 0.01)
    lower = stats.ttest_1samp(d, -0.01, axis=1, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, 0.01, axis=1, alternative="less").pvalue
    assert r.p_value == pytest.approx(np.maximum(lower, upper))


def test_tost_is_not_equivalence_when_the_spread_is_wide_or_the_mean_outside():
    # mean .01/3, s = .01155, se = .00667: t₋ = (.00333 + .01) / se = 2, p₋ = P(T₂ > 2) = .092;
    # t₊ = (.00333 − .01) / se = −1, p₊ = P(T₂ < −1) = .211 → p = .211
    wide = tost([0.01, -0.01, 0.01], 0.01)
    assert (float(wide.t_lower), float(wide.t_upper)) == pytest.approx((2.0, -1.0))
    assert float(wide.p_value) == pytest.approx(stats.t.cdf(-1.0, 2)) and wide.p_value > 0.05
    assert tost([0.05, 0.051, 0.049], 0.01).p_value > 0.5  # a clear 5 pp gain
    assert float(tost([0.0, 0.0, 0.0], 0.01).p_value) == 0.0  # no spread, inside the margin
    assert float(tost([0.25, 0.25], 0.01).p_value) == 1.0  # no spread, outside
    assert math.isnan(tost([0.0], 0.01).p_value)


@pytest.mark.parametrize("margin", [0.0, -0.01, math.nan, math.inf])
def test_tost_rejects_a_margin_that_is_not_positive(margin):
    with pytest.raises(ConfigError, match=r"^" + re.escape("margin must be a positive number")):
        tost([0.1, 0.2], margin)
