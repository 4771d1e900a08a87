"""Tests of robust/faults/_measures.py: Table 3.1 formulas by hand, every 0/0 case, Eq. 4.4."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robust.errors import ConfigError, DataError
from robust.faults import (
    MEASURES,
    Spectrum,
    dstar,
    feature_map_scores,
    ochiai,
    spectrum,
    tarantula,
)

# NS = 8 correct inputs, NF = 4 failed inputs; units as (ncs, nus, ncf, nuf).
UNITS = [
    (2, 6, 3, 1),  # a: mostly active on failures
    (8, 0, 1, 3),  # b: active on every success, one failure
    (0, 8, 4, 0),  # c: active on exactly the failures
    (0, 8, 0, 4),  # d: never active
    (4, 4, 0, 4),  # e: active on successes only
]


@pytest.fixture
def s(make_spectrum) -> Spectrum:
    return make_spectrum(*UNITS)


def test_tarantula_by_hand(s) -> None:
    # (ncf/NF) / (ncf/NF + ncs/NS)
    a = (3 / 4) / (3 / 4 + 2 / 8)  # 0.75 / 1.0 = 0.75
    b = (1 / 4) / (1 / 4 + 8 / 8)  # 0.25 / 1.25 = 0.2
    c = (4 / 4) / (4 / 4 + 0 / 8)  # 1 / 1 = 1
    d = 0.0  # 0 / (0 + 0): never active, 0/0 -> 0
    e = (0 / 4) / (0 / 4 + 4 / 8)  # 0 / 0.5 = 0
    np.testing.assert_allclose(tarantula(s), [a, b, c, d, e])
    np.testing.assert_allclose(tarantula(s), [0.75, 0.2, 1.0, 0.0, 0.0])


def test_ochiai_by_hand(s) -> None:
    # ncf / sqrt(NF * (ncf + ncs))
    a = 3 / math.sqrt(4 * (3 + 2))  # 3 / sqrt(20) = 0.6708...
    b = 1 / math.sqrt(4 * (1 + 8))  # 1 / 6
    c = 4 / math.sqrt(4 * (4 + 0))  # 4 / 4 = 1
    d = 0.0  # 0 / sqrt(4 * 0): never active, 0/0 -> 0
    e = 0 / math.sqrt(4 * (0 + 4))  # 0 / 4 = 0
    np.testing.assert_allclose(ochiai(s), [a, b, c, d, e])
    np.testing.assert_allclose(ochiai(s)[:3], [0.670820393, 1 / 6, 1.0])


def test_dstar_by_hand(s) -> None:
    # ncf^* / (ncs + nuf)
    np.testing.assert_allclose(dstar(s), [9 / 3, 1 / 11, np.inf, 0 / 4, 0 / 8])
    np.testing.assert_allclose(dstar(s, star=3), [27 / 3, 1 / 11, np.inf, 0.0, 0.0])
    np.testing.assert_allclose(dstar(s, star=0.5), [math.sqrt(3) / 3, 1 / 11, np.inf, 0, 0])
    np.testing.assert_allclose(dstar(s, star=1), [3 / 3, 1 / 11, np.inf, 0.0, 0.0])


def test_dstar_default_star_is_2(s) -> None:
    np.testing.assert_array_equal(dstar(s), dstar(s, star=2))


def test_no_failures_scores_zero(make_spectrum) -> None:
    # NF = 0: Tarantula 0 by the seed's rule; Ochiai 0/0 -> 0; D* 0 / ncs = 0 or 0/0 -> 0
    s = make_spectrum((3, 0, 0, 0), (1, 2, 0, 0), (0, 3, 0, 0))
    for measure in (tarantula, ochiai, dstar):
        np.testing.assert_array_equal(measure(s), [0.0, 0.0, 0.0], err_msg=measure.__name__)


def test_no_successes(make_spectrum) -> None:
    # NS = 0: Tarantula 0 by the seed's rule, even where 1 / (1 + 0/0) could be argued
    s = make_spectrum((0, 0, 2, 0), (0, 0, 1, 1), (0, 0, 0, 2))
    np.testing.assert_array_equal(tarantula(s), [0.0, 0.0, 0.0])
    # Ochiai stays defined: 2/sqrt(2*2) = 1, 1/sqrt(2*1) = 0.7071, never active 0/0 -> 0
    np.testing.assert_allclose(ochiai(s), [1.0, 1 / math.sqrt(2), 0.0])
    # D*: 4/0 -> inf, 1/1 = 1, 0/2 = 0
    np.testing.assert_array_equal(dstar(s), [np.inf, 1.0, 0.0])


def test_dstar_zero_over_zero_is_zero(make_spectrum) -> None:
    # ncf = 0 and ncs + nuf = 0: all inputs correct and the unit never active
    s = make_spectrum((0, 5, 0, 0))
    assert dstar(s).tolist() == [0.0]
    assert dstar(s, star=0.1).tolist() == [0.0]


def test_no_inputs_scores_zero() -> None:
    s = spectrum(np.zeros((0, 3)), np.zeros(0, dtype=bool))
    for measure in (tarantula, ochiai, dstar):
        np.testing.assert_array_equal(measure(s), np.zeros(3), err_msg=measure.__name__)


@pytest.mark.parametrize("measure", [tarantula, ochiai, dstar], ids=lambda m: m.__name__)
def test_output_has_unit_shape_and_is_a_new_float64_array(measure) -> None:
    rng = np.random.default_rng(0)
    acts = np.maximum(rng.normal(size=(20, 3, 2, 2)), 0)
    correct = rng.random(20) < 0.5
    s = spectrum(acts, correct)
    scores = measure(s)
    before = measure(s)
    assert scores.shape == (3, 2, 2)
    assert scores.dtype == np.float64
    assert scores.flags.writeable
    scores[...] = -1.0  # writing to the result leaves the spectrum alone
    # the spectrum still holds the counts: unit (c, h, w) is active on an input iff > 0
    active = acts > 0
    assert 0 < active.mean() < 1 and 0 < correct.mean() < 1  # every count can be wrong
    want = {
        "ncs": active[correct].sum(0),
        "nus": (~active[correct]).sum(0),
        "ncf": active[~correct].sum(0),
        "nuf": (~active[~correct]).sum(0),
    }
    for name, counts in want.items():
        np.testing.assert_array_equal(getattr(s, name), counts, err_msg=name)
    np.testing.assert_array_equal(measure(s), before)


@pytest.mark.parametrize("measure", [tarantula, ochiai, dstar], ids=lambda m: m.__name__)
def test_not_a_spectrum_raises(measure) -> None:
    with pytest.raises(ConfigError, match=r"s must be a Spectrum .* but got ndarray"):
        measure(np.zeros(3))


@pytest.mark.parametrize("star", [0, -1, 0.0, math.inf, math.nan, True, "2", None])
def test_invalid_star_raises(s, star) -> None:
    with pytest.raises(ConfigError, match="star must be a positive, finite real number, but got"):
        dstar(s, star=star)


def test_smallest_positive_star_is_accepted(s) -> None:
    assert np.isfinite(dstar(s, star=1e-9)[0])


def test_measures_by_name() -> None:
    assert {"tarantula": tarantula, "ochiai": ochiai, "dstar": dstar} == MEASURES


def test_feature_map_scores_is_the_mean_per_map() -> None:
    scores = np.array(
        [
            [[0.0, 1.0], [0.5, 0.5]],  # (0 + 1 + 0.5 + 0.5) / 4 = 0.5
            [[1.0, 1.0], [1.0, 0.0]],  # 3 / 4 = 0.75
            [[0.0, 0.0], [0.0, 0.2]],  # 0.2 / 4 = 0.05
        ]
    )
    np.testing.assert_allclose(feature_map_scores(scores), [0.5, 0.75, 0.05])
    np.testing.assert_allclose(feature_map_scores(torch.tensor(scores)), [0.5, 0.75, 0.05])
    assert feature_map_scores(scores).dtype == np.float64


def test_feature_map_scores_keeps_inf() -> None:
    scores = np.array([[[np.inf, 0.0]], [[1.0, 3.0]]])
    assert feature_map_scores(scores).tolist() == [np.inf, 2.0]


@pytest.mark.parametrize("shape", [(3,), (), (3, 0, 2)])
def test_feature_map_scores_rejects_bad_shapes(shape) -> None:
    with pytest.raises(DataError, match=r"shape \(C, H, W\) with at least one neuron per map"):
        feature_map_scores(np.zeros(shape))


@settings(max_examples=60, deadline=None)
@given(
    units=st.lists(
        st.tuples(*[st.integers(0, 6)] * 2), min_size=1, max_size=6
    ),  # (ncs, ncf) per unit
    n_success=st.integers(0, 6),
    n_fail=st.integers(0, 6),
)
def test_measure_ranges(units, n_success, n_fail) -> None:
    ncs = np.array([min(a, n_success) for a, _ in units])
    ncf = np.array([min(b, n_fail) for _, b in units])
    s = Spectrum(ncs=ncs, nus=n_success - ncs, ncf=ncf, nuf=n_fail - ncf)
    for measure in (tarantula, ochiai):
        scores = measure(s)
        assert ((scores >= 0) & (scores <= 1 + 1e-12)).all(), measure.__name__
    d = dstar(s)
    assert (d >= 0).all()
    assert not np.isnan(d).any()
    np.testing.assert_array_equal(np.isinf(d), (ncs + n_fail - ncf == 0) & (ncf > 0))
