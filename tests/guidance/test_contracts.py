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
