"""One entry point for every guidance metric: scores of a pool by metric name, and its order.

Seed 000 called each metric from its own script; :func:`score` dispatches on the metric's name
with the arguments each one needs (neuron coverage the per-layer activations, LSA and DSA the
flat traces and predictions against the clean training traces, DeepGini and entropy the
probabilities), and :func:`rank` adds the order and the time both took. Pure: the traces are
computed beforehand (:func:`robust.models.traces`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from robust.errors import ConfigError
from robust.guidance.coverage import neuron_coverage
from robust.guidance.ordering import order, random_scores
from robust.guidance.pool import Pool, TracesLike
from robust.guidance.surprise import dsa, lsa
from robust.guidance.uncertainty import deepgini, softmax_entropy

METRICS: tuple[str, ...] = ("nc", "lsa", "dsa", "deepgini", "entropy", "random")
"""Metric names of the metric stage (``-P metrics``), in seed 000's order of discussion."""

TRACE_METRICS: frozenset[str] = frozenset({"nc", "lsa", "dsa"})
"""Metrics that need activation traces (the others need only the softmax probabilities)."""


def score(
    metric: str,
    ref: TracesLike,
    pool: TracesLike,
    *,
    self_index: np.ndarray | Tensor | None = None,
    self_exclusion: bool = True,
    threshold: float = 0.2,
    var_threshold: float = 1e-5,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Scores of ``pool`` by one metric; LSA and DSA against the reference traces ``ref``.

    Args:
        metric: one of :data:`METRICS`.
        ref: reference traces (the clean training split), used by ``lsa`` and ``dsa``.
        pool: traces to score; ``nc``, ``lsa`` and ``dsa`` need its activations.
        self_index: dsa and lsa: (N,) reference position of each pool input that is a
            reference input, -1 for the others; None: none is.
        self_exclusion: lsa: leave an input's own trace out of its density (leave-one-out,
            as DSA always leaves it out); false: keep it, as seed 000 (see
            :func:`~robust.guidance.lsa`).
        threshold: nc: a neuron is covered when its scaled value is above it, in [0, 1).
        var_threshold: lsa: neurons whose variance is below this in any class are dropped.
        seed: random: the seed of the scores.
        device: lsa and dsa: where to compute; None: CUDA when present.

    Returns:
        (N,) float64 scores, higher = look first.

    Raises:
        ConfigError: an unknown metric (or a bad option of the metric).

    Example:
        >>> score("deepgini", ref, pool).shape == (len(pool),)
        True
    """
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, but got {metric=}")
    if metric == "nc":
        return neuron_coverage(pool.acts, threshold)
    if metric == "lsa":
        own = self_index if self_exclusion else None
        return lsa(
            ref.flat, ref.pred, pool.flat, pool.pred, var_threshold, self_index=own, device=device
        )
    if metric == "dsa":
        return dsa(ref.flat, ref.pred, pool.flat, pool.pred, self_index=self_index, device=device)
    if metric == "deepgini":
        return deepgini(pool.probs)
    if metric == "entropy":
        return softmax_entropy(pool.probs)
    return random_scores(len(pool), seed)


@dataclass(frozen=True)
class Ranking:
    """One metric's scores of a pool and the order they give.

    Attributes:
        scores: (N,) float64 scores, higher = look first.
        order: (N,) int64 pool positions, highest score first, ties in a seeded random order.
        seconds: wall time of scoring and ordering.
    """

    scores: np.ndarray
    order: np.ndarray
    seconds: float

    @property
    def samples_per_s(self) -> float:
        """Pool inputs scored and ordered per second."""
        return len(self.scores) / max(self.seconds, 1e-9)


def rank(
    metric: str,
    ref: TracesLike,
    pool: Pool,
    *,
    self_exclusion: bool = True,
    threshold: float = 0.2,
    var_threshold: float = 1e-5,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> Ranking:
    """Score ``pool`` by ``metric`` (see :func:`score`) and order it, timing both.

    A clean pool input is not its own DSA neighbour (``pool.self_index``), nor, with
    ``self_exclusion``, part of its own LSA density; ``seed`` seeds the random scores and the
    tie-breaking of the order.

    Example:
        >>> r = rank("dsa", ref, assemble_pool(ref, adv, ds.train.y, adv_set["y"]))
        >>> r.order.shape == r.scores.shape
        True
    """
    t0 = time.perf_counter()
    scores = score(
        metric,
        ref,
        pool.traces,
        self_index=pool.self_index,
        self_exclusion=self_exclusion,
        threshold=threshold,
        var_threshold=var_threshold,
        seed=seed,
        device=device,
    )
    ranked = order(scores, seed)
    return Ranking(scores, ranked, time.perf_counter() - t0)
