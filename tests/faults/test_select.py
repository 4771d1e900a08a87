"""Tests of robust/faults/_select.py: global dense ranking, per-layer conv maps, ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from robust.errors import ConfigError, DataError
from robust.faults import feature_map_scores, spectrum, tarantula, top_suspicious


def oracle_top(scores: np.ndarray, k: int) -> list[int]:
    """Indices by decreasing score, ties by lower index, the first k (plain Python)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]


def as_lists(selected: dict[str, np.ndarray]) -> dict[str, list[int]]:
    for idx in selected.values():
        assert idx.dtype == np.int64
    return {name: idx.tolist() for name, idx in selected.items()}


def test_seed_mnist_setup_ranks_dense_neurons_globally() -> None:
    # 5 hidden layers of 30 (the seed's dense MNIST model); the 20 best neurons lie in 3 layers
    scores = {f"fc{i}": np.full(30, 0.1) for i in range(1, 6)}
    scores["fc2"][:12] = 0.9  # 12 neurons at 0.9
    scores["fc1"][3] = 0.8  # 9 neurons tie at 0.8 for the last 8 places:
    scores["fc5"][10:18] = 0.8  # fc1 is the earlier layer, so fc5 unit 17 drops out
    assert as_lists(top_suspicious(scores, k=20)) == {
        "fc1": [3],
        "fc2": list(range(12)),
        "fc3": [],
        "fc4": [],
        "fc5": list(range(10, 17)),
    }


def test_random_mnist_setup_matches_a_flat_ranking() -> None:
    rng = np.random.default_rng(0)
    scores = {f"fc{i}": rng.random(30) for i in range(1, 6)}
    flat = np.concatenate(list(scores.values()))  # flat index = 30 * layer + unit, as the seed
    expected: dict[str, list[int]] = {name: [] for name in scores}
    for i in oracle_top(flat, 20):
        expected[f"fc{i // 30 + 1}"].append(i % 30)
    selected = as_lists(top_suspicious(scores, k=20))
    assert selected == expected
    assert sum(map(len, selected.values())) == 20


@pytest.mark.parametrize("k", [20, 40])
def test_seed_cifar_setup_takes_k_maps_per_conv_layer(k) -> None:
    # The seed's CIFAR CNN: conv outputs 30x30x32, 13x13x64, 4x4x64 and one 64-unit dense layer
    rng = np.random.default_rng(1)
    scores = {
        "conv1": rng.random((32, 30, 30)),
        "conv2": rng.random((64, 13, 13)),
        "conv3": rng.random((64, 4, 4)),
        "fc1": rng.random(64),
    }
    selected = as_lists(top_suspicious(scores, k=k))
    for name in ("conv1", "conv2", "conv3"):
        assert selected[name] == oracle_top(scores[name].mean(axis=(1, 2)), k)
    assert selected["fc1"] == oracle_top(scores["fc1"], k)
    assert [len(idx) for idx in selected.values()] == [min(k, 32), k, k, k]  # conv1 capped at 32


def test_maps_are_ranked_by_their_mean_score_not_their_best_neuron() -> None:
    scores = np.zeros((3, 2, 2))
    scores[0, 0, 0] = 1.0  # mean 0.25, but the single best neuron
    scores[1] = 0.5  # mean 0.5
    scores[2] = 0.3  # mean 0.3
    assert top_suspicious({"conv": scores}, k=2)["conv"].tolist() == [1, 2]


def test_conv_layers_names_per_map_scores() -> None:
    maps = np.array([0.2, 0.9, 0.5])  # already reduced by feature_map_scores
    dense = np.array([0.4, 0.8])
    # named: ranked on its own, so both layers get their best k
    assert as_lists(top_suspicious({"conv": maps, "fc": dense}, k=2, conv_layers={"conv"})) == {
        "conv": [1, 2],
        "fc": [1, 0],
    }
    # not named: a 1-D array is dense and competes globally
    assert as_lists(top_suspicious({"conv": maps, "fc": dense}, k=2)) == {
        "conv": [1],
        "fc": [1],
    }
    raw = np.stack([np.full((2, 2), v) for v in maps])  # raw (C, H, W) gives the same maps
    same = top_suspicious({"conv": raw}, k=2, conv_layers=["conv"])["conv"]
    assert same.tolist() == [1, 2]


def test_ties_go_to_the_lower_index_and_the_earlier_layer() -> None:
    scores = {"fc1": np.full(3, 0.5), "fc2": np.full(3, 0.5)}
    assert as_lists(top_suspicious(scores, k=4)) == {"fc1": [0, 1, 2], "fc2": [0]}
    assert top_suspicious({"conv": np.ones((4, 2, 2))}, k=3)["conv"].tolist() == [0, 1, 2]


def test_inf_scores_rank_first_and_tie_by_index() -> None:
    scores = {"fc": np.array([1.0, np.inf, 5.0, np.inf])}
    assert top_suspicious(scores, k=3)["fc"].tolist() == [1, 3, 2]


def test_selection_is_deterministic_and_keeps_layer_order() -> None:
    rng = np.random.default_rng(2)
    scores = {"b": rng.random(7).round(1), "a": rng.random((5, 2, 2)).round(1)}
    first = top_suspicious(scores, k=3)
    assert list(first) == ["b", "a"]
    for _ in range(3):
        again = top_suspicious(scores, k=3)
        assert all(np.array_equal(first[name], again[name]) for name in scores)


def test_k_larger_than_all_dense_units_selects_them_all() -> None:
    selected = top_suspicious({"fc1": np.array([0.1, 0.3]), "fc2": np.array([0.2])}, k=10)
    assert as_lists(selected) == {"fc1": [1, 0], "fc2": [0]}


def test_torch_scores_are_accepted() -> None:
    selected = top_suspicious({"fc": torch.tensor([0.1, 0.7, 0.3]), "c": torch.rand(2, 3, 3)})
    assert selected["fc"].tolist() == [1, 2, 0]
    assert sorted(selected["c"].tolist()) == [0, 1]


def test_inputs_are_not_modified() -> None:
    scores = {"fc": np.array([0.3, 0.1, 0.2])}
    top_suspicious(scores, k=2)
    assert scores["fc"].tolist() == [0.3, 0.1, 0.2]


def test_end_to_end_from_activations() -> None:
    # conv1 map 1 and dense unit 0 fire exactly on the failures: both are selected first
    correct = np.array([True, True, True, False, False])
    conv = np.zeros((5, 3, 2, 2))
    conv[:, 0] = 1.0  # always active: Tarantula 0.5
    conv[3:, 1] = 1.0  # active on the failures only: Tarantula 1
    dense = np.zeros((5, 4))
    dense[3:, 0] = 2.0
    dense[:3, 2] = 1.0  # active on successes only: Tarantula 0
    scores = {
        "conv1": tarantula(spectrum(conv, correct)),
        "fc1": tarantula(spectrum(torch.tensor(dense), torch.tensor(correct))),
    }
    np.testing.assert_allclose(feature_map_scores(scores["conv1"]), [0.5, 1.0, 0.0])
    assert as_lists(top_suspicious(scores, k=2)) == {"conv1": [1, 0], "fc1": [0, 1]}


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "20", None])
def test_invalid_k_raises(k) -> None:
    with pytest.raises(ConfigError, match="k must be an integer of at least 1, but got k="):
        top_suspicious({"fc": np.ones(3)}, k=k)


def test_k_of_one_is_accepted() -> None:
    assert top_suspicious({"fc": np.array([0.0, 1.0])}, k=1)["fc"].tolist() == [1]
    assert top_suspicious({"fc": np.array([0.0, 1.0])}, k=np.int64(1))["fc"].tolist() == [1]


def test_no_layers_raises() -> None:
    with pytest.raises(ConfigError, match="at least one layer, but got none"):
        top_suspicious({})


def test_unknown_conv_layer_raises() -> None:
    with pytest.raises(ConfigError, match=r"conv_layers must name layers .*\(fc\), but got conv"):
        top_suspicious({"fc": np.ones(3)}, conv_layers=["conv"])


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        (np.float64(1.0), r"layer 'fc' must be a non-empty array .* shape \(\)"),
        (np.ones(0), r"shape \(0,\)"),
        (np.array([0.1, np.nan]), "with 1 NaN"),
    ],
)
def test_invalid_scores_raise(scores, match) -> None:
    with pytest.raises(DataError, match=match):
        top_suspicious({"fc": scores})


@settings(max_examples=60, deadline=None)
@given(
    layers=st.lists(
        hnp.arrays(np.float64, st.integers(1, 8), elements=st.sampled_from([0.0, 0.5, 1.0])),
        min_size=1,
        max_size=4,
    ),
    k=st.integers(1, 12),
)
def test_dense_selection_is_the_global_top_k(layers, k) -> None:
    scores = {f"fc{i}": layer for i, layer in enumerate(layers)}
    selected = top_suspicious(scores, k=k)
    n_units = sum(layer.size for layer in layers)
    assert sum(idx.size for idx in selected.values()) == min(k, n_units)
    chosen = np.concatenate([scores[name][idx] for name, idx in selected.items()])
    rest = np.concatenate([np.delete(scores[name], idx) for name, idx in selected.items()])
    if rest.size:
        assert chosen.min() >= rest.max()
    for name, idx in selected.items():
        assert len(set(idx.tolist())) == idx.size
        assert (np.diff(scores[name][idx]) <= 0).all()  # most suspicious first
