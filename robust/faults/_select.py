"""The top-k suspicious units of a model: dense neurons ranked globally, conv maps per layer.

The rule reproduces both setups of the thesis (seed 004, k = 20): for the dense MNIST model,
the global top 20 of its 150 hidden neurons (5 layers of 30); for the CIFAR CNN, the top 20
feature maps of *each* of its 3 conv layers (capped at the layer's map count) plus the top 20
neurons of its dense layer. Conv maps are scored by the mean of their neurons (Eq. 4.4).

Seed difference: the seed read the target class once at import time, so all 10 per-class
generators shared class 9's (MNIST) or class 0's (CIFAR) suspicious set. This function is
given one class's scores; the caller selects per class.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
from torch import Tensor

from robust.errors import ConfigError, DataError
from robust.faults._measures import feature_map_scores


def _ranked(scores: np.ndarray) -> np.ndarray:
    """Indices by decreasing score; equal scores (``inf`` included) in increasing index order."""
    return np.argsort(-scores, kind="stable")


def top_suspicious(
    scores_by_layer: Mapping[str, np.ndarray | Tensor],
    k: int = 20,
    *,
    conv_layers: Collection[str] = (),
) -> dict[str, np.ndarray]:
    """Select the k most suspicious units: dense neurons over all dense layers, maps per conv.

    A layer is a conv layer if its scores have 2 or more axes, ``(C, H, W)`` neuron scores,
    which are reduced to per-map means (Eq. 4.4) here, or if it is named in ``conv_layers``,
    whose 1-D scores are taken as already per-map ``(C,)``. Every other layer is dense, with
    ``(units,)`` scores.

    * Dense neurons are ranked **together**: the k best over all dense layers, so one layer
      may get all of them and another none.
    * Conv maps are ranked **per layer**: the k best maps of each conv layer, or all of its
      maps if it has at most k.

    Ties are broken deterministically by position: the lower index first, and between dense
    layers the earlier layer in ``scores_by_layer``'s order. Scores of ``inf`` (D*) rank first.

    Args:
        scores_by_layer: layer name -> scores of one class, in the model's layer order, e.g.
            ``{"fc1": tarantula(spectrum(acts1, correct)), ...}``; numpy or torch.
        k: units to select in total over the dense layers, and per conv layer.
        conv_layers: names of layers whose 1-D scores are per-map conv scores.

    Returns:
        For every layer, in input order, the selected indices as int64, most suspicious
        first: unit indices for dense layers, map (channel) indices for conv layers; an
        empty array for a layer with nothing selected.

    Raises:
        ConfigError: k is not an integer of at least 1, no layer is given, or a name in
            ``conv_layers`` is not a layer.
        DataError: scores are 0-d, empty, or contain NaN.

    Example:
        >>> picked = top_suspicious({"fc1": np.array([0.1, 0.9]), "fc2": np.array([0.5])}, k=2)
        >>> {name: idx.tolist() for name, idx in picked.items()}
        {'fc1': [1], 'fc2': [0]}
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be an integer of at least 1, but got {k=}")
    if not scores_by_layer:
        raise ConfigError("scores_by_layer must hold at least one layer, but got none")
    unknown = sorted(set(conv_layers) - set(scores_by_layer))
    if unknown:
        raise ConfigError(
            f"conv_layers must name layers of scores_by_layer ({', '.join(scores_by_layer)}), "
            f"but got {', '.join(unknown)}"
        )

    dense: dict[str, np.ndarray] = {}
    selected: dict[str, np.ndarray] = {}
    for name, raw in scores_by_layer.items():
        if isinstance(raw, Tensor):
            raw = raw.detach().cpu().numpy()
        scores = np.asarray(raw, dtype=np.float64)
        if scores.ndim == 0 or scores.size == 0 or np.isnan(scores).any():
            raise DataError(
                f"scores of layer {name!r} must be a non-empty array without NaN, but got "
                f"shape {scores.shape} with {int(np.isnan(scores).sum())} NaN"
            )
        if scores.ndim >= 2 or name in conv_layers:
            maps = feature_map_scores(scores) if scores.ndim >= 2 else scores
            selected[name] = _ranked(maps)[:k].astype(np.int64)
        else:
            dense[name] = scores
            selected[name] = np.empty(0, dtype=np.int64)  # filled below, order kept

    if dense:
        sizes = [scores.size for scores in dense.values()]
        offsets = np.cumsum([0, *sizes])
        best = _ranked(np.concatenate(list(dense.values())))[:k]
        for name, start, stop in zip(dense, offsets[:-1], offsets[1:], strict=True):
            in_layer = best[(best >= start) & (best < stop)]
            selected[name] = (in_layer - start).astype(np.int64)
    return selected
