"""Shared fixtures: every test starts from the same seeded RNGs."""

import pytest

from robust.utils import seed_everything


@pytest.fixture(autouse=True)
def _seed() -> None:
    seed_everything(0)
