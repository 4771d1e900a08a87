"""Test-guidance metrics: which inputs to look at (and retrain on) first.

Seed 000 ranks a pool of clean and adversarial training inputs with six metrics and retrains on
the top of each ranking. All of them are pure functions of arrays (numpy or torch in, numpy
out); they never call a model. Higher means "look first"; :func:`order` turns scores into
indices, highest first, with seeded tie-breaking.

* :func:`neuron_coverage` / :func:`set_coverage` — DeepXplore's neuron coverage (per input,
  min-max scaled per input, threshold 0.2), :mod:`robust.guidance.coverage`;
* :func:`lsa`, :func:`dsa` — surprise adequacy (Kim et al. 2019),
  :mod:`robust.guidance.surprise`;
* :func:`deepgini`, :func:`softmax_entropy` — prediction uncertainty,
  :mod:`robust.guidance.uncertainty`;
* :func:`random_scores` — the seeded random baseline;
* :func:`score` / :func:`rank` — any of them by name (:data:`METRICS`), and its order,
  :mod:`robust.guidance.score`;
* :func:`assemble_pool` / :class:`Pool` — the clean and adversarial pool that seed 000 ranks,
  :mod:`robust.guidance.pool`.

Example:
    >>> import numpy as np
    >>> from robust.guidance import deepgini, order
    >>> order(deepgini(np.array([[0.9, 0.1], [0.5, 0.5], [1.0, 0.0]]))).tolist()
    [1, 0, 2]
"""

from robust.guidance.coverage import neuron_coverage, set_coverage
from robust.guidance.ordering import order, random_scores
from robust.guidance.pool import (
    POOL_KEYS,
    POOLS,
    Pool,
    TracesLike,
    assemble_pool,
    set_coverage_by_part,
)
from robust.guidance.score import METRICS, TRACE_METRICS, Ranking, rank, score
from robust.guidance.surprise import dsa, lsa
from robust.guidance.uncertainty import deepgini, softmax_entropy

__all__ = [
    "METRICS",
    "POOLS",
    "POOL_KEYS",
    "TRACE_METRICS",
    "Pool",
    "Ranking",
    "TracesLike",
    "assemble_pool",
    "deepgini",
    "dsa",
    "lsa",
    "neuron_coverage",
    "order",
    "random_scores",
    "rank",
    "score",
    "set_coverage",
    "set_coverage_by_part",
    "softmax_entropy",
]
