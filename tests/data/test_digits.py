"""The bundled scikit-learn digits (digits.py), loaded for real."""

from __future__ import annotations

import pytest
import torch

from robust.data import load


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def test_sizes_shapes_and_range(digits):
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1078, 359, 360)
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert digits.input_shape == (1, 8, 8) and digits.classes == tuple("0123456789")
    for split in (digits.train, digits.val, digits.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.min() == 0 and split.x.max() == 1
        assert torch.equal(split.x * 16, (split.x * 16).round())  # pixel counts / 16


def test_splits_are_stratified_60_20_20(digits):
    total = torch.bincount(torch.cat([digits.train.y, digits.val.y, digits.test.y]))
    for split, share in ((digits.train, 0.6), (digits.val, 0.2), (digits.test, 0.2)):
        counts = torch.bincount(split.y, minlength=10)
        assert (counts - total * share).abs().max() <= 1


def test_splits_partition_the_whole_dataset(digits):
    from sklearn.datasets import load_digits

    weights = torch.arange(1, 65, dtype=torch.float64)
    ours = torch.cat([digits.train.x, digits.val.x, digits.test.x]).flatten(1).double() * 16
    bunch = load_digits()
    theirs = torch.from_numpy(bunch.data)
    assert torch.equal((ours @ weights).sort().values, (theirs @ weights).sort().values)
    labels = torch.cat([digits.train.y, digits.val.y, digits.test.y])
    assert torch.equal(torch.bincount(labels), torch.bincount(torch.from_numpy(bunch.target)))


def test_seed_repeats_and_changes_split(digits):
    again, other = load("digits", seed=0), load("digits", seed=1)
    assert torch.equal(again.train.x, digits.train.x) and torch.equal(again.test.y, digits.test.y)
    assert not torch.equal(other.train.y, digits.train.y)


def test_options(digits):
    big = load("digits", size=16, grayscale=True)
    assert big.input_shape == (1, 16, 16) and big.train.x.max() <= 1
    preset = load("digits", preset="guided_retraining")
    assert torch.equal(preset.train.x, digits.train.x)  # the preset changes nothing for digits
