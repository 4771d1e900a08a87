"""Hit spectra of neurons: how often each unit was active on correct and on failed inputs.

Spectrum-based fault localisation (Jones & Harrold 2005) counts, per program element, the
passing and failing tests that executed it; DeepFault (Eniser et al. 2019) treats a neuron as
executed when its post-activation value exceeds a threshold. The four counts are the thesis'
Table 3.1 attributes: ``ncs`` = attr^as (active, success), ``ncf`` = attr^af (active, failure),
``nuf`` = attr^nf (inactive, failure), ``nus`` = attr^ns (inactive, success).

Seed difference: the seed code counted one input at a time in Python loops; here each count is
one vectorised reduction over the batch, on the activations' own device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Real

import numpy as np
import torch
from torch import Tensor

from robust.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False)
class Spectrum:
    """The hit spectrum of a layer's units: four read-only int64 count arrays of one shape.

    The shape is the unit shape: ``(units,)`` for a dense layer, ``(C, H, W)`` for the neurons
    of a conv layer. Two spectra compare equal when all four arrays are equal.

    Attributes:
        ncs: inputs classified correctly on which the unit was active (attr^as).
        nus: inputs classified correctly on which the unit was inactive (attr^ns).
        ncf: misclassified inputs on which the unit was active (attr^af).
        nuf: misclassified inputs on which the unit was inactive (attr^nf).

    Raises:
        DataError: the arrays differ in shape, are empty or 0-d, hold negative or non-integer
            values, or disagree on the number of correct (ncs + nus) or failed (ncf + nuf)
            inputs from one unit to the next.
    """

    ncs: np.ndarray
    nus: np.ndarray
    ncf: np.ndarray
    nuf: np.ndarray

    def __post_init__(self) -> None:
        counts = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}
        shapes = {name: a.shape for name, a in counts.items()}
        if len(set(shapes.values())) != 1:
            raise DataError(f"Spectrum counts must all have one shape, but got {shapes}")
        shape = counts["ncs"].shape
        if len(shape) == 0 or math.prod(shape) == 0:
            raise DataError(f"Spectrum counts must cover at least one unit, but got {shape=}")
        for name, a in counts.items():
            if a.dtype.kind not in "iu":
                raise DataError(f"Spectrum.{name} must hold integers, but got dtype {a.dtype}")
            if (a < 0).any():
                raise DataError(f"Spectrum.{name} must be non-negative, but has {a.min()}")
            frozen = a.astype(np.int64)  # always a copy, so the caller's array stays writable
            frozen.flags.writeable = False
            object.__setattr__(self, name, frozen)
        for a, b, what in (("ncs", "nus", "correct"), ("ncf", "nuf", "failed")):
            total = getattr(self, a) + getattr(self, b)
            if (total != total.flat[0]).any():
                raise DataError(
                    f"Spectrum.{a} + Spectrum.{b} must count the same {what} inputs for every "
                    f"unit, but ranges from {total.min()} to {total.max()}"
                )

    @property
    def shape(self) -> tuple[int, ...]:
        """The unit shape shared by the four counts."""
        return self.ncs.shape

    @property
    def n_success(self) -> int:
        """NS: the number of correctly classified inputs (ncs + nus of any unit)."""
        return int(self.ncs.flat[0] + self.nus.flat[0])

    @property
    def n_fail(self) -> int:
        """NF: the number of misclassified inputs (ncf + nuf of any unit)."""
        return int(self.ncf.flat[0] + self.nuf.flat[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Spectrum):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )

    __hash__ = None  # type: ignore[assignment]  # compared by array content, so not hashable


def _check_correct(correct: object, n: int) -> np.ndarray:
    """``correct`` as a (N,) numpy bool array, or a DataError saying what was wrong."""
    if isinstance(correct, Tensor):
        correct = correct.detach().cpu().numpy()
    correct = np.asarray(correct)
    if correct.shape != (n,):
        raise DataError(
            f"correct must have one entry per input, shape ({n},), but got shape {correct.shape}"
        )
    if correct.dtype != np.bool_:
        raise DataError(f"correct must be boolean (e.g. pred == y), but got dtype {correct.dtype}")
    return correct


def spectrum(
    activations: Tensor | np.ndarray, correct: Tensor | np.ndarray, threshold: float = 0.0
) -> Spectrum:
    """Count, per unit, the correct and failed inputs on which it was active and inactive.

    A unit is active on an input iff its activation is strictly greater than ``threshold``
    (as in the seed and DeepFault), so an activation equal to the threshold is inactive.
    Tensors are counted on their own device (GPU included); nothing is modified.

    Args:
        activations: (N, ...) post-activation values, numpy or torch; everything after the
            batch axis is the unit shape, e.g. (N, units) for a dense layer or (N, C, H, W)
            for a conv layer (reshape :func:`robust.models.activations`' flat output to keep
            the maps apart).
        correct: (N,) bool, True where the model classified the input correctly.
        threshold: activation level a unit must exceed to count as active.

    Returns:
        The :class:`Spectrum` of the units, with counts of the unit shape.

    Raises:
        DataError: activations with fewer than 2 axes, no units, a non-numeric dtype or NaN;
            ``correct`` not boolean or not of shape (N,).
        ConfigError: ``threshold`` is not a real number or is NaN.

    Example:
        >>> acts = np.array([[0.5, 0.0], [0.2, 1.0], [0.0, 3.0]])
        >>> s = spectrum(acts, np.array([True, True, False]))
        >>> s.ncs.tolist(), s.ncf.tolist()
        ([2, 1], [0, 1])
    """
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or math.isnan(threshold):
        raise ConfigError(f"threshold must be a real number, but got {threshold=}")
    is_tensor = isinstance(activations, Tensor)
    acts = activations.detach() if is_tensor else np.asarray(activations)
    if acts.ndim < 2 or math.prod(acts.shape[1:]) == 0:
        raise DataError(
            "activations must have shape (N, units...) with at least one unit, but got shape "
            f"{tuple(acts.shape)}"
        )
    if is_tensor:
        if acts.is_complex():
            raise DataError(f"activations must be real, but got dtype {acts.dtype}")
        has_nan = acts.is_floating_point() and bool(torch.isnan(acts).any())
    else:
        if acts.dtype.kind not in "biuf":
            raise DataError(f"activations must be real numbers, but got dtype {acts.dtype}")
        has_nan = acts.dtype.kind == "f" and bool(np.isnan(acts).any())
    if has_nan:  # NaN is neither active nor inactive
        raise DataError("activations must not contain NaN, but some entries are NaN")
    ok = _check_correct(correct, acts.shape[0])

    active = acts > float(threshold)  # (N, ...) bool, on the activations' device
    if is_tensor:
        ok_t = torch.from_numpy(ok).to(acts.device)
        ncs, ncf = (active[mask].sum(0).cpu().numpy() for mask in (ok_t, ~ok_t))
    else:
        ncs, ncf = active[ok].sum(0), active[~ok].sum(0)
    n_success = int(ok.sum())
    n_fail = ok.size - n_success
    return Spectrum(ncs=ncs, nus=n_success - ncs, ncf=ncf, nuf=n_fail - ncf)
