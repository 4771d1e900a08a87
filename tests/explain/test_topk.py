"""Tests of robust/explain/_topk.py: per-class top-k relevant inputs and seed 004's k."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robust.errors import ConfigError, DataError
from robust.explain import default_k, relevance, top_relevant
from robust.models import build


@pytest.fixture
def model() -> torch.nn.Module:
    return build("digits_cnn", num_classes=3)


@pytest.fixture
def xy() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(20, 1, 8, 8), torch.tensor([0, 1, 2, 2, 1] * 4)


def test_matches_mean_relevance_per_true_class_then_argsort(model, xy) -> None:
    x, y = xy
    top = top_relevant(model, x, y, k=5, batch_size=8)
    r = relevance(model, x, target=y).flatten(1).double().numpy()
    assert sorted(top) == [0, 1, 2]
    for c in range(3):
        mean = r[y.numpy() == c].mean(0)
        assert top[c].dtype == np.int64 and top[c].shape == (5,)
        np.testing.assert_array_equal(top[c], np.argsort(-mean, kind="stable")[:5])
        assert np.all(np.diff(mean[top[c]]) <= 0)  # by decreasing relevance


def test_default_k_and_numpy_inputs(model, xy) -> None:
    x, y = xy
    top = top_relevant(model, x.numpy(), y.numpy(), rule="zplus", num_classes=3)
    assert all(v.shape == (default_k((1, 8, 8)),) for v in top.values())  # 16
    np.testing.assert_array_equal(top[1], top_relevant(model, x, y, 16, rule="zplus")[1])


@pytest.mark.parametrize(
    ("shape", "k"),
    [
        ((1, 28, 28), 20),
        ((3, 32, 32), 80),
        ((1, 8, 8), 16),
        ((1, 1, 1), 1),
        ((1, 3, 3), 9),
        ((3, 64, 64), 320),
    ],
)
def test_default_k_follows_seed_004(shape, k) -> None:
    assert default_k(shape) == k


@pytest.mark.parametrize("shape", [(), (1, 0, 8), (1.0, 8, 8), "128", (True, 2)])
def test_default_k_refuses_bad_shapes(shape) -> None:
    with pytest.raises(ConfigError, match="input_shape must be positive integers"):
        default_k(shape)


def test_absent_classes_are_named(model, xy) -> None:
    x, _ = xy
    y = torch.tensor([0, 2] * 10)
    with pytest.raises(
        DataError, match=r"must occur in y, but got no input of class\(es\) \[1\]$"
    ):
        top_relevant(model, x, y, k=3)
    with pytest.raises(DataError, match=r"\[1, 3\]$"):
        top_relevant(model, x, y, k=3, num_classes=4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, r"k must be an integer in \[1, 64\] \(values per input\), but got k=0"),
        ({"k": 65}, r"but got k=65"),
        ({"k": 2.0}, r"but got k=2.0"),
        ({"num_classes": 2}, r"y must be below num_classes=2, but got max\(y\)=2"),
        (
            {"num_classes": 0},
            r"num_classes must be an integer of at least 1, but got num_classes=0",
        ),
        ({"rule": "lrp"}, r"rule must be one of epsilon, zplus"),
        ({"batch_size": 0}, r"batch_size must be an integer of at least 1"),
    ],
)
def test_bad_arguments_raise(model, xy, kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        top_relevant(model, *xy, **{"k": 3, **kwargs})


def test_k_at_its_limits(model, xy) -> None:
    assert top_relevant(model, *xy, k=1)[0].shape == (1,)
    full = top_relevant(model, *xy, k=64)
    assert all(sorted(v.tolist()) == list(range(64)) for v in full.values())


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (torch.tensor([0, 1] * 10).float(), r"y must be integer labels of shape \(20,\)"),
        (
            torch.tensor([0, 1] * 5),
            r"y must be integer labels of shape \(20,\), but got .* \(10,\)",
        ),
        (torch.tensor([-1, 1] * 10), r"y must be at least 0, but got min\(y\)=-1"),
    ],
)
def test_bad_labels_raise(model, xy, y, match) -> None:
    with pytest.raises(ConfigError, match=match):
        top_relevant(model, xy[0], y, k=3)
