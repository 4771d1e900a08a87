"""Wilson score intervals (robust/evaluation/intervals.py) against scipy's binomtest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from robust.errors import ConfigError
from robust.evaluation import wilson


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 5000),
    share=st.floats(0, 1),
    confidence=st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_equals_scipy_s_wilson_interval(n, share, confidence):
    k = round(share * n)
    want = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = wilson(k, n, confidence)
    assert low == pytest.approx(want.low, abs=1e-12)
    assert high == pytest.approx(want.high, abs=1e-12)
    assert 0 <= low <= k / n <= high <= 1


def test_is_elementwise_and_narrows_with_more_inputs():
    low, high = wilson(np.array([0, 90, 200]), np.array([200, 200, 200]))
    assert low.shape == high.shape == (3,)
    assert low[0] == 0 and high[2] == 1  # at 0 and at n the interval still has a width
    assert high[0] > 0 and low[2] < 1
    small = np.subtract(*wilson(45, 100)[::-1])
    large = np.subtract(*wilson(450, 1000)[::-1])
    assert large < small / 3 < small


@pytest.mark.parametrize(
    ("k", "n", "confidence", "message"),
    [
        (5, 0, 0.95, "counts must be 0 ≤ k ≤ n with n ≥ 1, but got k=5, n=0"),
        (-1, 4, 0.95, "counts must be 0 ≤ k ≤ n with n ≥ 1, but got k=-1, n=4"),
        (5, 4, 0.95, "counts must be 0 ≤ k ≤ n with n ≥ 1, but got k=5, n=4"),
        (1, 4, 1.0, "confidence must be in (0, 1), but got confidence=1.0"),
    ],
)
def test_bad_counts_are_one_line(k, n, confidence, message):
    with pytest.raises(ConfigError) as e:
        wilson(k, n, confidence)
    assert str(e.value) == message
