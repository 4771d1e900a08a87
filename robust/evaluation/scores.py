"""Summaries and histograms of per-input guidance scores (the metric stage's report).

A pool is given as named parts (``{"clean": …, "adversarial": …}``), each a 1-D array of one
metric's scores. Infinite scores (DSA gives inf when b = 0) are counted, not averaged: every
statistic is over the finite scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from robust.errors import DataError


def _parts(parts: Mapping[str, object]) -> dict[str, np.ndarray]:
    out = {name: np.asarray(v, dtype=np.float64) for name, v in parts.items()}
    if not out or any(v.ndim != 1 for v in out.values()):
        raise DataError(
            f"parts must map at least one name to a 1-D score array, but got shapes "
            f"{ {k: v.shape for k, v in out.items()} }"
        )
    if any(np.isnan(v).any() for v in out.values()):
        raise DataError("scores must not be NaN")
    return out


def score_summary(parts: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Statistics of the scores of all parts together, and each part's mean.

    Args:
        parts: name → (N_part,) scores (±inf allowed, NaN not).

    Returns:
        ``mean``, ``std``, ``min``, ``max``, ``median`` over the finite scores (absent if none
        is finite); ``n_inf`` when some are infinite; ``<name>_mean`` per part with a finite
        score when there are at least two parts.

    Example:
        >>> s = score_summary({"clean": np.array([0.0, 1.0]), "adversarial": np.array([np.inf])})
        >>> s["mean"], s["n_inf"], s["clean_mean"], "adversarial_mean" in s
        (0.5, 1, 0.5, False)
    """
    arrays = _parts(parts)
    every = np.concatenate(list(arrays.values()))
    finite = every[np.isfinite(every)]
    out: dict[str, float] = {}
    if len(finite) < len(every):
        out["n_inf"] = int(len(every) - len(finite))
    if len(finite):
        out |= {
            "mean": float(finite.mean()),
            "std": float(finite.std()),
            "min": float(finite.min()),
            "max": float(finite.max()),
            "median": float(np.median(finite)),
        }
    if len(arrays) > 1:
        for name, v in arrays.items():
            if np.isfinite(v).any():
                out[f"{name}_mean"] = float(v[np.isfinite(v)].mean())
    return out


def plot_score_histogram(
    parts: Mapping[str, np.ndarray], metric: str, path: str | Path, *, bins: int = 40
) -> Path:
    """PNG of one metric's score histograms, one per part, overlaid on shared bins.

    Each part's bars are its share of that part's inputs, so parts of different sizes compare;
    infinite scores are left out and counted in the legend.

    Args:
        parts: name → (N_part,) scores, e.g. ``{"clean": …, "adversarial": …}``.
        metric: the metric's name (axis label and title).
        path: output file (``.png``); parent folders are created.
        bins: number of shared bins.

    Returns:
        ``path`` as a Path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    arrays = _parts(parts)
    finite = {name: v[np.isfinite(v)] for name, v in arrays.items()}
    every = np.concatenate(list(finite.values()))
    edges = np.histogram_bin_edges(every, bins=bins) if len(every) else bins
    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, v in finite.items():
        n, n_inf = len(arrays[name]), len(arrays[name]) - len(v)
        label = f"{name} (n={n}" + (f", {n_inf} inf not shown)" if n_inf else ")")
        weights = np.full(len(v), 1 / n) if n else None
        ax.hist(v, bins=edges, weights=weights, alpha=0.5, histtype="stepfilled", label=label)
    ax.set(xlabel=f"{metric} score", ylabel="share of the part's inputs", title=metric)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
