"""Shared fixtures and helpers: every test starts from the same seeded RNGs; digits and a
small slice of it; the training arguments the adversarial-training tests share."""

from types import SimpleNamespace

import pytest
import torch

from robust.utils import seed_everything

ARGS = {"epochs": 2, "lr": 1e-3, "batch_size": 32, "optimizer": "adam", "device": "cpu"}
"""Two quick epochs of Adam on the CPU."""


def split(x: torch.Tensor, y: torch.Tensor) -> SimpleNamespace:
    """A stand-in for :class:`robust.data.Split`: just x and y."""
    return SimpleNamespace(x=x, y=y)


@pytest.fixture(autouse=True)
def _seed() -> None:
    seed_everything(0)


@pytest.fixture(scope="module")
def ds():
    from robust import data

    return data.load("digits", seed=0)


@pytest.fixture
def small(ds):
    """200 training and 100 validation digits: enough for a few batches per epoch."""
    return split(ds.train.x[:200], ds.train.y[:200]), split(ds.val.x[:100], ds.val.y[:100])
