"""Budget steps, configurations and the order each configuration trains from
(robust/retraining/_budgets.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from robust.errors import ConfigError, DataError
from robust.retraining import (
    CONFIGS,
    SEED_BUDGETS,
    budget_sizes,
    budgets,
    seed_budgets,
    training_order,
)

# Seed 000's sets per dataset and configuration, as the code notes' §4 table gives them:
# (step m, number of sets, the last multiple of m, the pool = the last set).
SEED_TABLE = {
    ("gtsrb", "c1"): (1750, 21, 35000, 35287),
    ("gtsrb", "c2"): (1750, 21, 35000, 35287),
    ("gtsrb", "c3"): (190, 20, 3610, 3921),
    ("intel", "c1"): (700, 21, 14000, 14224),
    ("intel", "c2"): (700, 21, 14000, 14224),
    ("intel", "c3"): (150, 20, 2850, 3000),
    ("cifar10", "c1"): (2400, 20, 45600, 47999),
    ("cifar10", "c2"): (2400, 20, 45600, 47999),
    ("cifar10", "c3"): (300, 20, 5700, 6000),
    ("mnist", "c1"): (2800, 20, 53200, 55998),
    ("mnist", "c2"): (2800, 20, 53200, 55998),
    ("mnist", "c3"): (340, 20, 6460, 6999),
    ("fashion", "c1"): (2800, 20, 53200, 55998),
    ("fashion", "c2"): (2800, 20, 53200, 55998),
    ("fashion", "c3"): (340, 20, 6460, 6999),
}


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


@pytest.mark.parametrize(
    ("dataset", "config"), [pytest.param(*k, id="-".join(k)) for k in SEED_TABLE]
)
def test_seed_budgets_are_exactly_the_seeds_sets(dataset, config):
    m, sets, last_multiple, n = SEED_TABLE[dataset, config]
    expected = [*range(m, last_multiple + 1, m), n]
    for sizes in (
        seed_budgets(dataset, config),
        seed_budgets(dataset, config, n),
        budget_sizes("seed", dataset, config, n),
        budgets(n, seed_budgets(dataset, config).tolist()),  # what retrain then rechecks
    ):
        assert sizes.dtype == np.int64 and sizes.tolist() == expected
        assert len(sizes) == sets


def test_the_seed_table_covers_every_seed_dataset_and_configuration():
    assert {(d, c) for d in SEED_BUDGETS for c in SEED_BUDGETS[d]} == set(SEED_TABLE)


def test_auto_budgets_differ_from_the_seeds_where_it_rounded_by_hand():
    """The departure budgets=seed undoes: GTSRB c1 20 sets of 1764, c3 m = 196."""
    assert budget_sizes("auto", "gtsrb", "c1", 35287)[[0, -2]].tolist() == [1764, 33516]
    assert budget_sizes("auto", "gtsrb", "c3", 3921)[0] == 196
    assert budget_sizes("auto", "mnist", "c3", 6999)[0] == 350
    assert budget_sizes("auto", "digits", "c2", 2156).tolist() == budgets(2156, 5).tolist()
    assert budget_sizes("auto", "digits", "c2", 2156, 4).tolist() == budgets(2156, 4).tolist()


def test_seed_budgets_on_another_pool_keep_the_seeds_step_and_end_at_the_pool():
    """2851 is the smallest pool intel c3 accepts (2850 is refused below)."""
    sizes = seed_budgets("intel", "c3", 2851)
    assert sizes[:-1].tolist() == list(range(150, 2851, 150)) and sizes[-1] == 2851


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: seed_budgets("digits", "c2"),
            "budgets=seed exists for gtsrb, intel, cifar10, mnist, fashion only (seed 000's "
            "datasets), but got dataset='digits'",
            id="digits",
        ),
        pytest.param(
            lambda: seed_budgets("mnist", "c4"),
            "config must be one of c1, c2, c3, but got config='c4'",
            id="config",
        ),
        pytest.param(
            lambda: seed_budgets("intel", "c3", 2850),
            "budgets=seed for intel c3 steps by 150 over 20 sets, so the pool must hold more "
            "than 2850 inputs (the seed's held 3000), but got n=2850",
            id="pool-too-small",
        ),
        pytest.param(
            lambda: budget_sizes("seed", "mnist", "c1", 55998, 20),
            "steps must be auto with budgets=seed (the seed fixes its sets), but got steps=20",
            id="steps-with-seed",
        ),
        pytest.param(
            lambda: budget_sizes("exact", "mnist", "c1", 55998),
            "budgets must be one of auto, seed, but got budgets='exact'",
            id="kind",
        ),
        pytest.param(
            lambda: budgets(10, [3, 6, 9]),
            "budget sizes must be integers increasing strictly from at least 1 to the pool "
            "size 10, but got sizes=[3, 6, 9]",
            id="sizes-short-of-n",
        ),
        pytest.param(
            lambda: budgets(10, [0, 10]),
            "budget sizes must be integers increasing strictly from at least 1",
            id="sizes-from-0",
        ),
        pytest.param(
            lambda: budgets(10, [5, 5, 10]),
            "budget sizes must be integers increasing strictly",
            id="sizes-not-increasing",
        ),
        pytest.param(lambda: budgets(10, []), "budget sizes must be integers", id="no-sizes"),
    ],
)
def test_seed_budgets_limits(call, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        call()
