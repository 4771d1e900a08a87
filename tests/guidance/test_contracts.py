"""Contracts of the guidance helpers that mutation testing found unguarded (tools/mutation.sh):
inputs they accept as documented, boundaries they draw exactly, and chunking that must not
change a result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robust.errors import ConfigError, DataError
from robust.guidance import (
    coverage,
    neuron_coverage,
    order,
    random_scores,
    set_coverage,
    softmax_entropy,
)
from robust.guidance._arrays import probabilities


def test_order_takes_tensors_and_breaks_ties_with_seed_0_by_default():
    scores = np.array([0.5, 0.5, 0.9, 0.5, 0.1, 0.5])
    assert np.array_equal(order(torch.tensor(scores)), order(scores))
    assert np.array_equal(order(scores), order(scores, seed=0))
    assert order(scores).dtype == np.int64
    orders = {tuple(order(scores, seed=s)) for s in range(20)}
    assert len(orders) > 1 and all(o[0] == 2 and o[-1] == 4 for o in orders)  # ties move only


@pytest.mark.parametrize("seed", [1.5, True, -1, "3"])
def test_seeds_must_be_non_negative_integers(seed):
    with pytest.raises(ConfigError, match=r"^seed must be an integer of at least 0"):
        order(np.zeros(3), seed=seed)
    with pytest.raises(ConfigError, match=r"^seed must be an integer of at least 0"):
        random_scores(3, seed=seed)


def test_random_scores_sizes():
    assert random_scores(0).shape == (0,)
    assert np.array_equal(random_scores(5), random_scores(5, seed=0))
    with pytest.raises(ConfigError, match=r"^n must be an integer of at least 0"):
        random_scores("3")
    with pytest.raises(ConfigError, match=r"^n must be an integer of at least 0"):
        random_scores(True)


def test_entropy_bases():
    p = np.array([[0.25, 0.25, 0.25, 0.25]])
    assert softmax_entropy(p, base=4) == pytest.approx([1.0])
    assert softmax_entropy(p, base=np.e) == pytest.approx([np.log(4)])
    for base in ("2", 1, 0.5, 0, True):  # below 1 every entropy would be negative
        with pytest.raises(ConfigError, match=r"^base must be a number greater than 1"):
            softmax_entropy(p, base=base)


def test_probabilities_are_float64_distributions_within_1e_3():
    assert probabilities(np.array([[0.3, 0.7]], np.float32)).dtype == torch.float64
    assert probabilities(np.array([[0.3, 0.7005]])).shape == (1, 2)  # within the tolerance
    for bad in ([[0.3, 0.71]], [[1.01, 0.0]], [[-0.1, 1.1]]):
        with pytest.raises(DataError, match=r"^probs must be probabilities"):
            probabilities(np.array(bad))
    for bad in (np.array([[0, 1]]), np.zeros((3, 0)), np.zeros(3)):
        with pytest.raises(DataError, match=r"^probs must be float class probabilities"):
            probabilities(bad)


def test_a_neuron_exactly_at_the_threshold_is_not_covered():
    acts = np.array([[0.0, 0.2, 0.5, 1.0]])  # scaled: 0, 0.2, 0.5, 1
    assert neuron_coverage(acts, threshold=0.2).tolist() == [0.5]
    assert neuron_coverage(acts, threshold=0.19).tolist() == [0.75]
    for bad in (True, 1.0, -0.1, "0.2"):
        with pytest.raises(ConfigError, match=r"^threshold must be in"):
            neuron_coverage(acts, threshold=bad)


def test_set_coverage_unites_chunks_and_handles_no_inputs(monkeypatch):
    rng = np.random.default_rng(0)
    acts = rng.random((50, 30)) ** 3  # each input covers a few neurons
    whole = set_coverage(acts, threshold=0.5)
    per_input = neuron_coverage(acts, threshold=0.5)
    monkeypatch.setattr(coverage, "_ROWS_BUDGET", 30)  # one input per chunk
    assert set_coverage(acts, threshold=0.5) == whole
    assert np.array_equal(neuron_coverage(acts, threshold=0.5), per_input)
    assert whole > per_input.max()  # the union covers more than any one input
    assert set_coverage(np.zeros((0, 30))) == 0.0
    assert neuron_coverage(np.zeros((0, 30))).shape == (0,)


# --- the one-line errors of bad activations name the argument and what was wrong ---------------
REF = np.random.default_rng(0).random((20, 4))
REF_PRED = np.arange(20) % 2


@pytest.mark.parametrize("metric", ["lsa", "dsa"])
@pytest.mark.parametrize(
    ("which", "value", "message"),
    [
        ("train_acts", np.zeros(20), r"^train_acts must be activation traces of shape "
         r"\(N, features\), but got shape \(20,\)$"),
        ("train_acts", REF.astype(np.complex64), r"^train_acts must be numeric, but got dtype "
         r"torch.complex64$"),
        ("train_acts", np.zeros((20, 0)), r"^train_acts must have at least one feature, but "
         r"got shape \(20, 0\)$"),
        ("acts", np.full((3, 4), np.inf), r"^acts must be finite, but holds NaN or inf$"),
        ("acts", np.zeros((3, 5)), r"^acts must have the reference traces' 4 features, but "
         r"have 5$"),
        ("train_pred", np.zeros(19, int), r"^train_pred must have one class per trace, shape "
         r"\(20,\), but got \(19,\)$"),
        ("pred", np.zeros(3), r"^pred must hold integer classes, but got dtype float64$"),
        ("pred", -np.ones(3, int), r"^pred must hold classes ≥ 0, but has -1$"),
    ],
)  # fmt: skip
def test_surprise_inputs_are_checked_by_name(metric, which, value, message):
    from robust.guidance import dsa, lsa

    args = {"train_acts": REF, "train_pred": REF_PRED, "acts": REF[:3], "pred": REF_PRED[:3]}
    args[which] = value
    fn = lsa if metric == "lsa" else dsa
    with pytest.raises(DataError, match=message):
        fn(**args)


@pytest.mark.parametrize(
    ("acts", "message"),
    [
        ([], r"^acts must hold at least one layer's activations, but got none$"),
        (np.zeros((3, 4), int), r"^acts must be \(N, units\) dense or \(N, C, H, W\) conv "
         r"activations, but got torch.int64 of shape \(3, 4\)$"),
        (np.zeros((3, 2, 0, 0)), r"^acts must be .* but got torch.float64 of shape "
         r"\(3, 2, 0, 0\)$"),
        (np.full((3, 4), np.nan), r"^acts must not hold NaN$"),
        ([np.zeros((3, 4)), np.zeros((2, 4))], r"^acts layers must cover the same inputs, but "
         r"got \[3, 2\]$"),
    ],
)  # fmt: skip
def test_coverage_inputs_are_checked(acts, message):
    with pytest.raises(DataError, match=message):
        neuron_coverage(acts)


def test_tensors_and_arrays_give_the_same_scores():
    from robust.guidance import dsa, lsa

    rng = np.random.default_rng(1)
    ref, x = rng.random((40, 6)), rng.random((5, 6))
    ref_pred, pred = np.arange(40) % 2, np.arange(5) % 2
    t = torch.from_numpy
    assert np.array_equal(lsa(ref, ref_pred, x, pred), lsa(t(ref), t(ref_pred), t(x), t(pred)))
    assert np.array_equal(dsa(ref, ref_pred, x, pred), dsa(t(ref), t(ref_pred), t(x), t(pred)))
    acts = rng.random((5, 3, 2, 2))
    assert np.array_equal(neuron_coverage(acts), neuron_coverage(t(acts)))
    assert np.array_equal(neuron_coverage([acts, x]), neuron_coverage([t(acts), t(x)]))
