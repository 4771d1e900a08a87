"""Shared helpers for the fault-localisation tests: spectra from explicit counts."""

from __future__ import annotations

import numpy as np
import pytest

from robust.faults import Spectrum


@pytest.fixture
def make_spectrum():
    """Build a Spectrum from per-unit (ncs, nus, ncf, nuf) tuples."""

    def make(*units: tuple[int, int, int, int]) -> Spectrum:
        ncs, nus, ncf, nuf = (np.array(column) for column in zip(*units, strict=True))
        return Spectrum(ncs=ncs, nus=nus, ncf=ncf, nuf=nuf)

    return make
