"""Tests of robust/faults/_spectrum.py: hit-spectrum counts against an explicit-loop oracle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from robust.errors import ConfigError, DataError
from robust.faults import Spectrum, spectrum
from tests.markers import requires_cuda


def loop_counts(acts: np.ndarray, correct: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """The oracle: the seed's way, one input and one unit at a time."""
    counts = {
        name: np.zeros(acts.shape[1:], dtype=np.int64) for name in ("ncs", "nus", "ncf", "nuf")
    }
    for n in range(acts.shape[0]):
        for unit in np.ndindex(*acts.shape[1:]):
            active = acts[(n, *unit)] > threshold
            key = ("nc" if active else "nu") + ("s" if correct[n] else "f")
            counts[key][unit] += 1
    return counts


def assert_counts(s: Spectrum, expected: dict[str, np.ndarray]) -> None:
    for name, value in expected.items():
        np.testing.assert_array_equal(getattr(s, name), value, err_msg=name)
        assert getattr(s, name).dtype == np.int64


@pytest.mark.parametrize("shape", [(12, 5), (9, 2, 3, 3)], ids=["dense", "conv"])
@pytest.mark.parametrize("threshold", [0.0, 0.3])
def test_counts_match_explicit_loops(shape, threshold) -> None:
    rng = np.random.default_rng(0)
    acts = np.maximum(rng.normal(size=shape), 0.0)  # post-ReLU: many exact zeros
    correct = rng.random(shape[0]) < 0.6
    s = spectrum(acts, correct, threshold)
    assert s.shape == shape[1:]
    assert_counts(s, loop_counts(acts, correct, threshold))
    assert s.n_success == correct.sum()
    assert s.n_fail == (~correct).sum()


def test_torch_input_gives_the_numpy_counts() -> None:
    acts = torch.relu(torch.randn(10, 3, 2, 2))
    correct = torch.rand(10) < 0.5
    s = spectrum(acts, correct)
    assert_counts(s, loop_counts(acts.numpy(), correct.numpy(), 0.0))
    assert s == spectrum(acts.numpy(), correct.numpy())


@requires_cuda
def test_cuda_input_gives_the_cpu_counts() -> None:
    acts = torch.relu(torch.randn(64, 4, 3, 3))
    correct = torch.rand(64) < 0.5
    assert spectrum(acts.cuda(), correct.cuda()) == spectrum(acts, correct)


def test_hand_counted_example() -> None:
    # unit 0 is active on inputs 0 (correct) and 2 (failed); unit 1 only on input 1 (correct)
    acts = np.array([[0.5, 0.0], [0.0, 2.0], [1.0, -1.0], [0.0, 0.0]])
    correct = np.array([True, True, False, False])
    s = spectrum(acts, correct)
    assert s.ncs.tolist() == [1, 1]
    assert s.nus.tolist() == [1, 1]
    assert s.ncf.tolist() == [1, 0]
    assert s.nuf.tolist() == [1, 2]
    assert (s.n_success, s.n_fail) == (2, 2)


def test_activation_equal_to_threshold_is_inactive() -> None:
    acts = np.array([[0.0, 0.5, np.nextafter(0.5, 1.0)]])
    s = spectrum(acts, np.array([True]), threshold=0.5)
    assert s.ncs.tolist() == [0, 0, 1]
    assert spectrum(acts, np.array([True])).ncs.tolist() == [0, 1, 1]  # default threshold 0
    assert spectrum(torch.tensor(acts), torch.tensor([True]), 0.5).ncs.tolist() == [0, 0, 1]


def test_negative_threshold_counts_zeros_as_active() -> None:
    s = spectrum(np.zeros((3, 2)), np.array([True, False, True]), threshold=-0.1)
    assert s.ncs.tolist() == [2, 2]
    assert s.ncf.tolist() == [1, 1]


def test_no_inputs_gives_zero_counts() -> None:
    s = spectrum(np.zeros((0, 4)), np.zeros(0, dtype=bool))
    assert s.shape == (4,)
    assert (s.n_success, s.n_fail) == (0, 0)
    assert all(not getattr(s, name).any() for name in ("ncs", "nus", "ncf", "nuf"))


def test_inputs_are_not_modified() -> None:
    acts = torch.relu(torch.randn(6, 3)).requires_grad_()
    before = acts.detach().clone()
    correct = np.array([True, False] * 3)
    spectrum(acts, correct)
    assert torch.equal(acts.detach(), before)
    assert correct.tolist() == [True, False] * 3


def test_spectrum_is_frozen_and_read_only() -> None:
    ncs = np.array([1, 2])
    s = Spectrum(ncs=ncs, nus=np.array([1, 0]), ncf=np.array([0, 3]), nuf=np.array([3, 0]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.ncs = np.array([0, 0])  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        s.ncs[0] = 5
    ncs[0] = 7  # the caller's array is copied, not shared
    assert s.ncs.tolist() == [1, 2]
    assert (s.n_success, s.n_fail) == (2, 3)


def test_spectrum_equality_compares_counts() -> None:
    a = Spectrum(ncs=np.array([1]), nus=np.array([0]), ncf=np.array([0]), nuf=np.array([1]))
    b = Spectrum(ncs=np.array([1]), nus=np.array([0]), ncf=np.array([0]), nuf=np.array([1]))
    c = Spectrum(ncs=np.array([0]), nus=np.array([1]), ncf=np.array([0]), nuf=np.array([1]))
    assert a == b
    assert a != c
    assert a != "spectrum"


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        ({"ncs": [1, 2], "nus": [1], "ncf": [0], "nuf": [0]}, "must all have one shape"),
        ({"ncs": [], "nus": [], "ncf": [], "nuf": []}, "at least one unit"),
        ({"ncs": [1.0], "nus": [0], "ncf": [0], "nuf": [0]}, "Spectrum.ncs must hold integers"),
        ({"ncs": [1], "nus": [-1], "ncf": [0], "nuf": [0]}, "Spectrum.nus must be non-negative"),
        ({"ncs": [1, 0], "nus": [0, 0], "ncf": [0, 0], "nuf": [0, 0]}, "same correct inputs"),
        ({"ncs": [0, 0], "nus": [1, 1], "ncf": [2, 0], "nuf": [0, 1]}, "same failed inputs"),
    ],
)
def test_invalid_spectrum_raises(counts, match) -> None:
    with pytest.raises(DataError, match=match):
        Spectrum(**{name: np.array(value) for name, value in counts.items()})


def test_scalar_spectrum_raises() -> None:
    with pytest.raises(DataError, match=r"at least one unit, but got shape=\(\)"):
        Spectrum(ncs=np.array(1), nus=np.array(0), ncf=np.array(0), nuf=np.array(0))


@pytest.mark.parametrize(
    ("acts", "correct", "match"),
    [
        (np.zeros(4), np.ones(4, bool), r"shape \(N, units...\) .* got shape \(4,\)"),
        (np.zeros((4, 0)), np.ones(4, bool), r"at least one unit, but got shape \(4, 0\)"),
        (np.zeros((4, 2)), np.ones(3, bool), r"one entry per input, shape \(4,\), .* \(3,\)"),
        (np.zeros((4, 2)), np.ones((4, 1), bool), r"one entry per input.*\(4, 1\)"),
        (np.zeros((4, 2)), np.ones(4, int), "correct must be boolean .* dtype int64"),
        (np.full((2, 2), np.nan), np.ones(2, bool), "must not contain NaN"),
        (torch.full((2, 2), torch.nan), np.ones(2, bool), "must not contain NaN"),
        (np.array([["a"], ["b"]]), np.ones(2, bool), "must be real numbers, but got dtype <U1"),
        (torch.zeros(2, 2, dtype=torch.complex64), np.ones(2, bool), "must be real"),
    ],
)
def test_invalid_data_raises(acts, correct, match) -> None:
    with pytest.raises(DataError, match=match):
        spectrum(acts, correct)


@pytest.mark.parametrize("threshold", [float("nan"), "0.5", None, True])
def test_invalid_threshold_raises(threshold) -> None:
    with pytest.raises(ConfigError, match="threshold must be a real number, but got threshold="):
        spectrum(np.zeros((2, 2)), np.ones(2, bool), threshold)


def test_integer_and_bool_activations_are_accepted() -> None:
    correct = np.array([True, False])
    assert spectrum(np.array([[1, 0], [2, 0]]), correct, threshold=1).ncf.tolist() == [1, 0]
    assert spectrum(np.array([[True], [False]]), correct).ncs.tolist() == [1]


@settings(max_examples=60, deadline=None)
@given(
    acts=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=5),
        elements=st.sampled_from([-1.0, 0.0, 0.25, 1.0]),
    ),
    data=st.data(),
    threshold=st.sampled_from([-0.5, 0.0, 0.25, 0.5]),
)
def test_counts_partition_the_inputs(acts, data, threshold) -> None:
    n = acts.shape[0]
    correct = data.draw(hnp.arrays(np.bool_, n))
    s = spectrum(acts, correct, threshold)
    n_active = (acts > threshold).sum(axis=0)
    np.testing.assert_array_equal(s.ncs + s.nus + s.ncf + s.nuf, np.full(acts.shape[1:], n))
    np.testing.assert_array_equal(s.ncs + s.nus, np.full(acts.shape[1:], correct.sum()))
    np.testing.assert_array_equal(s.ncs + s.ncf, n_active)
    perm = data.draw(st.permutations(range(n)))
    assert spectrum(acts[perm], correct[perm], threshold) == s  # order of inputs is irrelevant
