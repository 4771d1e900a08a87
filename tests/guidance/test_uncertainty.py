"""robust/guidance/uncertainty.py: DeepGini and softmax entropy against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robust.errors import ConfigError, DataError
from robust.guidance import deepgini, softmax_entropy


def test_known_values():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.7, 0.2, 0.1]])
    np.testing.assert_allclose(deepgini(p), [0.0, 0.5, 2 / 3, 1 - 0.49 - 0.04 - 0.01])
    np.testing.assert_allclose(
        softmax_entropy(p),
        [
            0.0,
            1.0,
            math.log2(3),
            -(0.7 * math.log2(0.7) + 0.2 * math.log2(0.2) + 0.1 * math.log2(0.1)),
        ],
    )
    np.testing.assert_allclose(softmax_entropy(p, base=math.e)[2], math.log(3))


def test_real_probabilities_match_the_direct_formulas(real):
    p = real.test.probs
    np.testing.assert_allclose(deepgini(p), 1 - (p**2).sum(1), rtol=0, atol=1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = -np.nansum(p * np.log2(p), axis=1)
    np.testing.assert_allclose(softmax_entropy(p), direct, rtol=0, atol=1e-10)
    # torch in, same numbers out
    np.testing.assert_array_equal(deepgini(torch.from_numpy(p)), deepgini(p))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 20),
    k=st.integers(2, 12),
    seed=st.integers(0, 2**16),
)
def test_bounds_and_permutation(n, k, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, (n, k))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for f, top in ((deepgini, 1 - 1 / k), (softmax_entropy, math.log2(k))):
        s = f(p)
        assert s.shape == (n,) and np.isfinite(s).all()
        assert (s >= 0).all() and (s <= top + 1e-9).all()
        perm = rng.permutation(n)
        np.testing.assert_allclose(f(p[perm]), s[perm], rtol=0, atol=1e-12)


@pytest.mark.parametrize("f", [deepgini, softmax_entropy])
def test_logits_and_bad_shapes_are_refused(f):
    with pytest.raises(DataError, match=r"pass torch\.softmax"):
        f(np.array([[2.0, -1.0]]))
    with pytest.raises(DataError, match=r"shape \(N, K\)"):
        f(np.array([0.5, 0.5]))


def test_entropy_base_limits():
    p = np.array([[0.5, 0.5]])
    for base in (0, 1, -2, True):
        with pytest.raises(ConfigError, match="base must be"):
            softmax_entropy(p, base=base)
    assert softmax_entropy(p, base=4)[0] == pytest.approx(0.5)
