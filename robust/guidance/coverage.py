"""Neuron coverage (Pei et al., "DeepXplore", SOSP 2017), as seed 000 computed it.

Seed 000 (``TestSelection/utils/ncoverage.py``) ran one input at a time: the layer's output is
min-max scaled over **that input's** neurons, and a neuron is covered when its scaled value
exceeds ``threshold`` (0.2); a conv channel counts as one neuron, covered when the mean of its
scaled map exceeds the threshold. NC of an input is the covered fraction. Here all inputs are
scaled at once (vectorised, in bounded chunks) with the same definitions, and
:func:`set_coverage` gives DeepXplore's set-level coverage: the fraction of neurons covered by
at least one input. A layer whose output is constant on an input has no scale (the seed's 0/0
gave NaN, which is never above the threshold): none of its neurons is covered by that input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from robust.errors import ConfigError, DataError

_ROWS_BUDGET = 1 << 24  # elements per chunk of inputs


def _layers(acts: object) -> list[Tensor]:
    """One (N, ...) float tensor per layer, all with the same N."""
    items = list(acts) if isinstance(acts, (list, tuple)) else [acts]
    if not items:
        raise DataError("acts must hold at least one layer's activations, but got none")
    out = []
    for a in items:
        t = a.detach().cpu() if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a))
        if t.dim() not in (2, 4) or not t.is_floating_point() or t.shape[1:].numel() == 0:
            raise DataError(
                f"acts must be (N, units) dense or (N, C, H, W) conv activations, but got "
                f"{t.dtype} of shape {tuple(t.shape)}"
            )
        if torch.isnan(t).any():
            raise DataError("acts must not hold NaN")
        out.append(t)
    if len({len(t) for t in out}) != 1:
        raise DataError(f"acts layers must cover the same inputs, but got {[len(t) for t in out]}")
    return out


def _check_threshold(threshold: float) -> None:
    ok = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    if not ok or not 0 <= threshold < 1:
        raise ConfigError(f"threshold must be in [0, 1), but got {threshold=}")


def _covered(layer: Tensor, threshold: float) -> Tensor:
    """(N, units) bool: which neurons of one layer each input covers."""
    flat = layer.reshape(len(layer), -1).to(torch.float64)
    low = flat.amin(1, keepdim=True)
    span = flat.amax(1, keepdim=True) - low
    scaled = (flat - low) / span.where(span > 0, torch.ones_like(span))
    if layer.dim() == 4:  # a channel is one neuron: the mean of its scaled map
        scaled = scaled.view(layer.shape).mean((2, 3))
    return (scaled > threshold) & (span > 0)


def _per_layer(acts: object, threshold: float):
    """Yield (N_chunk, units) covered masks per chunk of inputs, layers concatenated."""
    _check_threshold(threshold)
    layers = _layers(acts)
    n = len(layers[0])
    per_input = sum(t[0:1].numel() for t in layers) if n else 1
    rows = max(1, _ROWS_BUDGET // max(1, per_input))
    for i in range(0, n, rows):
        yield torch.cat([_covered(t[i : i + rows], threshold) for t in layers], dim=1)


def neuron_coverage(
    acts: np.ndarray | Tensor | Sequence[np.ndarray | Tensor], threshold: float = 0.2
) -> np.ndarray:
    """Fraction of neurons each input covers.

    Args:
        acts: one layer's activations, (N, units) or (N, C, H, W), or a sequence of layers
            (each scaled on its own; their neurons pooled). numpy or torch.
        threshold: a neuron is covered when its scaled value is strictly above it, in [0, 1).

    Returns:
        (N,) float64 in [0, 1].

    Example:
        >>> neuron_coverage(np.array([[0.0, 1.0, 0.1, 0.5]])).tolist()  # scaled 0, 1, .1, .5
        [0.5]
    """
    parts = [m.double().mean(1) for m in _per_layer(acts, threshold)]
    return torch.cat(parts).numpy() if parts else np.zeros(0)


def set_coverage(
    acts: np.ndarray | Tensor | Sequence[np.ndarray | Tensor], threshold: float = 0.2
) -> float:
    """Fraction of neurons covered by at least one input of the set (DeepXplore's NC).

    Example:
        >>> set_coverage(np.array([[0.0, 1.0, 0.1], [1.0, 0.0, 0.1]]))
        0.6666666666666666
    """
    seen = None
    for m in _per_layer(acts, threshold):
        hit = m.any(0)
        seen = hit if seen is None else seen | hit
    return float(seen.double().mean()) if seen is not None else 0.0
