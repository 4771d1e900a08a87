"""A small trained digits model shared by the attack tests (trained once per session)."""

from __future__ import annotations

import pytest

from robust import data, models
from robust.training import fit


@pytest.fixture(scope="session")
def digits():
    return data.load("digits", seed=0)


@pytest.fixture(scope="session")
def trained(digits):
    model = models.for_dataset(digits)
    fit(
        model,
        digits.train,
        digits.val,
        epochs=8,
        lr=1e-3,
        batch_size=32,
        optimizer="adam",
        seed=0,
        device="cpu",
        progress=False,
    )
    return model.eval()
