"""Budget steps, configurations and the order each configuration trains from
(robust/retraining/_budgets.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from robust.errors import ConfigError, DataError
from robust.retraining import CONFIGS, budgets, training_order


@pytest.mark.parametrize(
    ("n", "steps", "expected"),
    [
        pytest.param(55998, 20, [*range(2800, 53201, 2800), 55998], id="mnist-seed"),
        pytest.param(47999, 20, [*range(2400, 45601, 2400), 47999], id="cifar-seed"),
        pytest.param(2156, 5, [431, 862, 1293, 1724, 2156], id="digits"),
        pytest.param(10, 4, [3, 6, 9, 10], id="round-half-up"),  # 2.5 → 3
        pytest.param(6, 4, [1, 2, 3, 6], id="lowered-to-increase"),  # round(1.5) = 2 → 2·3 = 6
        pytest.param(7, 1, [7], id="one-step"),
        pytest.param(5, 5, [1, 2, 3, 4, 5], id="one-input-each"),
        pytest.param(1, 1, [1], id="one-input"),
    ],
)
def test_budgets(n, steps, expected):
    sizes = budgets(n, steps)
    assert sizes.dtype == np.int64 and sizes.tolist() == expected
    assert np.all(np.diff(sizes) > 0) and sizes[-1] == n


@pytest.mark.parametrize(
    ("n", "steps", "message"),
    [
        (10, 0, "steps must be an integer of at least 1, but got steps=0"),
        (10, 11, "steps must be at most the pool size 10 (one input per step), but got steps=11"),
        (0, 1, "n must be an integer of at least 1, but got n=0"),
        (10, 2.0, "steps must be an integer of at least 1, but got steps=2.0"),
        (10, True, "steps must be an integer of at least 1, but got steps=True"),
    ],
)
def test_budgets_limits(n, steps, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        budgets(n, steps)


def test_c1_and_c2_take_the_whole_order_and_c3_its_adversarial_entries_in_order():
    source = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    order = np.array([5, 0, 7, 2, 3, 6, 1, 4])
    for config in ("c1", "c2"):
        assert training_order(order, source, config).tolist() == order.tolist()
    assert training_order(order, source, "c3").tolist() == [5, 7, 3, 4]
    assert set(CONFIGS) == {"c1", "c2", "c3"}


def test_c3_of_a_pool_without_adversarial_inputs_is_empty():
    assert training_order(np.arange(3), np.zeros(3, dtype=int), "c3").tolist() == []


@pytest.mark.parametrize(
    ("order", "source", "config", "error", "message"),
    [
        (
            [0, 1],
            [0, 1],
            "c4",
            ConfigError,
            "config must be one of c1, c2, c3, but got config='c4'",
        ),
        ([0, 0], [0, 1], "c1", DataError, "order must be a permutation of the 2 pool positions"),
        ([0, 1, 2], [0, 1], "c1", DataError, "order must be a permutation of the 2 pool"),
        ([0, 1], [0, 2], "c1", DataError, "source must be a 1-D array of 0 (clean) and 1"),
    ],
)
def test_training_order_rejects(order, source, config, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        training_order(np.array(order), np.array(source), config)
