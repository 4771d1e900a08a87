"""The pool that seed 000 ranks: clean training inputs followed by adversarial ones.

Seed 000 scored the clean training split and the adversarial training inputs together and
retrained on the top of each ranking (``pool=train_and_adversarial``); ``pool=adversarial``
keeps only the adversarial part. The clean split is the LSA/DSA reference either way, so a
clean input of the pool is reference trace j and is not its own DSA neighbour
(:attr:`Pool.self_index`). Traces come from :func:`robust.models.traces`; this module only
joins and describes them (it never calls a model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from robust.errors import ConfigError, DataError
from robust.guidance.coverage import set_coverage

POOLS: tuple[str, ...] = ("train_and_adversarial", "adversarial")
"""Pool kinds: the clean train split then the adversarial inputs, or only the latter."""

POOL_KEYS: dict[str, str] = {
    "source": "0 = clean training input, 1 = adversarial input",
    "index": "clean: index into the train split; adversarial: index into the attack run's "
    "adversarial/train.safetensors (whose own index points into the train split)",
    "y": "true label",
    "pred": "the model's predicted class",
}
"""What each tensor of :meth:`Pool.tensors` holds."""


class TracesLike(Protocol):
    """Traces of N inputs, as :class:`robust.models.Traces` holds them.

    ``acts``: one (N, ...) tensor per layer; ``probs``: (N, K) softmax probabilities;
    ``flat``: (N, features); ``pred``: (N,) predicted classes; ``+`` joins two sets.
    """

    @property
    def acts(self) -> Sequence[Tensor]: ...

    @property
    def probs(self) -> Tensor: ...

    @property
    def flat(self) -> Tensor: ...

    @property
    def pred(self) -> Tensor: ...

    def __len__(self) -> int: ...

    def __add__(self, other: Any) -> Any: ...


@dataclass(frozen=True)
class Pool:
    """A pool to rank: ``traces`` holds the clean part (if any), then the adversarial part.

    Build it with :func:`assemble_pool`.

    Attributes:
        kind: one of :data:`POOLS`.
        traces: traces of the whole pool, clean inputs first.
        clean: traces of the clean part; None when the pool has none.
        adversarial: traces of the adversarial part.
        y: (N,) int64 true labels of the pool.
    """

    kind: str
    traces: TracesLike
    clean: TracesLike | None
    adversarial: TracesLike
    y: Tensor

    @property
    def n_clean(self) -> int:
        """Number of clean inputs (the first ones)."""
        return 0 if self.clean is None else len(self.clean)

    @property
    def n_adversarial(self) -> int:
        """Number of adversarial inputs (the last ones)."""
        return len(self.adversarial)

    def __len__(self) -> int:
        return len(self.traces)

    @property
    def self_index(self) -> Tensor:
        """(N,) int64: reference position of each clean input (clean input i is trace i of the
        train split), -1 for the adversarial ones; DSA's ``self_index``."""
        return torch.cat([torch.arange(self.n_clean), torch.full((self.n_adversarial,), -1)])

    def sizes(self) -> dict[str, int]:
        """``pool/n_clean`` and ``pool/n_adversarial``, as metric keys."""
        return {"pool/n_clean": self.n_clean, "pool/n_adversarial": self.n_adversarial}

    def parts(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """(N,) pool scores split into ``clean`` and ``adversarial`` (only the latter when the
        pool has no clean part)."""
        if len(scores) != len(self):
            raise DataError(
                f"scores must hold one score per pool input, {len(self)}, but got {len(scores)}"
            )
        if not self.n_clean:
            return {"adversarial": scores}
        return {"clean": scores[: self.n_clean], "adversarial": scores[self.n_clean :]}

    def tensors(self) -> dict[str, Tensor]:
        """The (N,) int64 tensors ``source``, ``index``, ``y`` and ``pred`` (see
        :data:`POOL_KEYS`)."""
        n_clean, n_adv = self.n_clean, self.n_adversarial
        return {
            "source": torch.cat([torch.zeros(n_clean), torch.ones(n_adv)]).long(),
            "index": torch.cat([torch.arange(n_clean), torch.arange(n_adv)]),
            "y": self.y,
            "pred": self.traces.pred,
        }

    def describe(
        self,
        lineage: Mapping[str, str],
        *,
        metrics: Sequence[str],
        layer: Sequence[str],
        seed: int,
    ) -> dict[str, Any]:
        """A JSON-ready description of the pool and its score and order tensors.

        Args:
            lineage: run ids the pool comes from (e.g. ``attack_run``, ``model_run``), first.
            metrics: the metrics scored.
            layer: the traced layers.
            seed: seed of the random scores and of tie-breaking.
        """
        return {
            **lineage,
            "pool": self.kind,
            "n_clean": self.n_clean,
            "n_adversarial": self.n_adversarial,
            "metrics": list(metrics),
            "layer": list(layer),
            "seed": seed,
            "pool_keys": POOL_KEYS,
            "scores": "one float64 (N,) tensor per metric, higher = look first",
            "order": "one int64 (N,) tensor per metric: pool positions, highest score "
            "first, ties in a seeded random order",
        }


def assemble_pool(
    clean: TracesLike,
    adversarial: TracesLike,
    y_clean: Tensor,
    y_adversarial: Tensor,
    *,
    kind: str = "train_and_adversarial",
) -> Pool:
    """The pool of ``kind``: the clean inputs (for ``train_and_adversarial``), then the
    adversarial ones.

    Args:
        clean: traces of the clean training split (also the LSA/DSA reference).
        adversarial: traces of the adversarial training inputs.
        y_clean: (N_clean,) true labels of the clean inputs.
        y_adversarial: (N_adv,) true labels of the adversarial inputs.
        kind: one of :data:`POOLS`.

    Returns:
        The :class:`Pool`.

    Raises:
        ConfigError: an unknown ``kind``.
        DataError: labels that do not match their traces in number.

    Example:
        >>> pool = assemble_pool(ref, adv, ds.train.y, adv_set["y"])
        >>> pool.sizes()
        {'pool/n_clean': 1078, 'pool/n_adversarial': 1078}
    """
    if kind not in POOLS:
        raise ConfigError(f"kind must be one of {', '.join(POOLS)}, but got {kind=}")
    for name, t, y in (("y_clean", clean, y_clean), ("y_adversarial", adversarial, y_adversarial)):
        if len(y) != len(t):
            raise DataError(f"{name} must hold one label per trace, {len(t)}, but got {len(y)}")
    if kind == "adversarial":
        return Pool(kind, adversarial, None, adversarial, torch.as_tensor(y_adversarial).long())
    y = torch.cat([torch.as_tensor(y_clean), torch.as_tensor(y_adversarial)]).long()
    return Pool(kind, clean + adversarial, clean, adversarial, y)


def set_coverage_by_part(pool: Pool, threshold: float = 0.2) -> dict[str, float]:
    """DeepXplore's set-level neuron coverage of the pool and of each of its parts.

    Args:
        pool: a pool whose traces hold activations.
        threshold: a neuron is covered when its scaled value is strictly above it, in [0, 1).

    Returns:
        ``nc/set_coverage`` (the pool), ``nc/set_coverage_clean`` (when the pool has a clean
        part) and ``nc/set_coverage_adversarial``, each in [0, 1].
    """
    out = {"nc/set_coverage": set_coverage(pool.traces.acts, threshold)}
    if pool.clean is not None and pool.n_clean:
        out["nc/set_coverage_clean"] = set_coverage(pool.clean.acts, threshold)
    return out | {"nc/set_coverage_adversarial": set_coverage(pool.adversarial.acts, threshold)}
