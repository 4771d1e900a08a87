"""Suspiciousness measures of the thesis' Table 3.1 and the feature-map score of its Eq. 4.4.

With NS = ncs + nus (correct inputs) and NF = ncf + nuf (failed inputs), per unit:

* Tarantula (Jones & Harrold 2005): (ncf/NF) / (ncf/NF + ncs/NS)
* Ochiai (Ochiai 1957): ncf / sqrt(NF · (ncf + ncs))
* D* (Wong et al. 2014): ncf^* / (ncs + nuf), with * > 0

DeepFault (Eniser et al. 2019) applied them to neurons. The formulas are undefined where a
denominator is 0; each function states the value it returns there, and all of them return 0
for 0/0, so a unit without evidence never outranks one with evidence. The seed code computed
Tarantula only (``ochiahi()`` was never called, D* did not exist) with the same 0 convention.

All measures are pure: they read a :class:`~robust.faults.Spectrum` and return a new float64
array of its unit shape, which is 1-D ``(units,)`` for a dense layer and ``(C, H, W)`` for a
conv layer (reduce it per map with :func:`feature_map_scores`). Higher means more suspicious.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

import numpy as np
from torch import Tensor

from robust.errors import ConfigError, DataError
from robust.faults._spectrum import Spectrum


def _check_spectrum(s: object) -> Spectrum:
    if not isinstance(s, Spectrum):
        raise ConfigError(
            f"s must be a Spectrum from robust.faults.spectrum, but got {type(s).__name__}"
        )
    return s


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float64, and 0 wherever den is 0 (callers handle num > 0 there)."""
    return np.divide(num, den, out=np.zeros(np.shape(num)), where=den != 0)


def tarantula(s: Spectrum) -> np.ndarray:
    """Tarantula: the unit's failure activation rate relative to its total activation rate.

    ``(ncf/NF) / (ncf/NF + ncs/NS)``, in [0, 1].

    0/0 handling (the seed's): every unit scores 0 when NF = 0 (no failure to explain) or
    NS = 0 (no success to compare with); a unit never active (ncf = ncs = 0, so the
    denominator is 0) scores 0.

    Args:
        s: the layer's spectrum.

    Returns:
        float64 scores of the unit shape ``s.shape``.
    """
    s = _check_spectrum(s)
    if s.n_fail == 0 or s.n_success == 0:
        return np.zeros(s.shape)
    fail_rate = s.ncf / s.n_fail
    return _divide(fail_rate, fail_rate + s.ncs / s.n_success)


def ochiai(s: Spectrum) -> np.ndarray:
    """Ochiai: the cosine similarity of the unit's activity and the failures.

    ``ncf / sqrt(NF · (ncf + ncs))``, in [0, 1].

    0/0 handling: the denominator is 0 only when NF = 0 or the unit is never active, and
    then ncf = 0 too; the score is 0.

    Args:
        s: the layer's spectrum.

    Returns:
        float64 scores of the unit shape ``s.shape``.
    """
    s = _check_spectrum(s)
    return _divide(s.ncf.astype(np.float64), np.sqrt(float(s.n_fail) * (s.ncf + s.ncs)))


def dstar(s: Spectrum, star: float = 2) -> np.ndarray:
    """D*: failures covered, raised to ``star``, per unexplained observation.

    ``ncf^star / (ncs + nuf)``, in [0, inf].

    0/0 handling: the denominator is 0 when the unit was active on every failed input and on
    no correct one. With ncf > 0 that is the strongest possible evidence, so the score is
    ``np.inf``, which ranks first (units tied at ``inf`` are ordered by index, see
    :func:`top_suspicious`); with ncf = 0 too (0/0: no failed input and never active) it is 0.

    Args:
        s: the layer's spectrum.
        star: the exponent *, a positive real number (Wong et al. use 2; DeepFault also 3).

    Returns:
        float64 scores of the unit shape ``s.shape``.

    Raises:
        ConfigError: ``star`` is not a positive, finite real number.
    """
    if isinstance(star, bool) or not isinstance(star, Real) or not 0 < star < math.inf:
        raise ConfigError(f"star must be a positive, finite real number, but got {star=}")
    s = _check_spectrum(s)
    num = s.ncf.astype(np.float64) ** float(star)
    den = s.ncs + s.nuf
    out = _divide(num, den)
    out[(den == 0) & (s.ncf > 0)] = np.inf
    return out


MEASURES: dict[str, Callable[..., np.ndarray]] = {
    "tarantula": tarantula,
    "ochiai": ochiai,
    "dstar": dstar,
}
"""Each measure by name: ``MEASURES[name](s)`` gives the unit scores of spectrum ``s``."""


def feature_map_scores(scores: np.ndarray | Tensor) -> np.ndarray:
    """The score of each feature map: the mean of its neurons' scores (thesis Eq. 4.4).

    Ranking maps instead of single neurons keeps the suspicious set from collapsing into one
    map and gives conv layers a workable k (the thesis' reason).

    Args:
        scores: (C, H, W) neuron scores of one conv layer (any (C, ...) shape works), numpy
            or torch, e.g. ``tarantula(s)`` for a conv layer's spectrum.

    Returns:
        (C,) float64, the mean over each map's neurons. A map containing ``inf`` (D*) scores
        ``inf``.

    Raises:
        DataError: fewer than 2 axes, or maps without neurons.
    """
    if isinstance(scores, Tensor):
        scores = scores.detach().cpu().numpy()
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim < 2 or math.prod(scores.shape[1:]) == 0:
        raise DataError(
            "scores must have shape (C, H, W) with at least one neuron per map, but got shape "
            f"{scores.shape}"
        )
    return scores.reshape(scores.shape[0], -1).mean(axis=1)
