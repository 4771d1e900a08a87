"""Seeded index splits (split.py)."""

from __future__ import annotations

import numpy as np
import pytest

from robust.data.split import holdout, seed_split, three_way
from robust.errors import DataError


def test_three_way_is_a_stratified_partition():
    y = np.repeat(np.arange(5), 20)
    train, val, test = three_way(y, 0.2, 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(100))
    for part, n in ((train, 12), (val, 4), (test, 4)):
        assert np.array_equal(np.bincount(y[part]), [n] * 5)
        assert np.array_equal(part, np.sort(part))


def test_seeds_repeat_and_differ():
    y = np.repeat(np.arange(3), 30)
    a, b, c = (holdout(y, 0.1, seed=s) for s in (7, 7, 8))
    assert np.array_equal(a[1], b[1]) and not np.array_equal(a[1], c[1])


@pytest.mark.parametrize(
    ("n", "sizes"), [(70000, (48999, 14000, 7001)), (60000, (41999, 12000, 6001))]
)
def test_seed_split_reproduces_the_seed_sizes(n, sizes):
    parts = seed_split(np.zeros(n, dtype=np.int64), seed=0)
    assert tuple(len(p) for p in parts) == sizes
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def test_too_few_per_class_is_a_data_error():
    y = np.array([0, 0, 0, 1])
    with pytest.raises(DataError, match=r"cannot split tiny \(4 images\) .* stratified by class"):
        holdout(y, 0.5, seed=0, what="tiny")
