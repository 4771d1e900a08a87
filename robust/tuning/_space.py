"""Search spaces over each DGN loss's weights (and optionally the learning rate), and the point
of each space that the attack uses when given no weights (the study's first trial)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from robust.attacks import dgn
from robust.errors import ConfigError
from robust.explain import default_k


@dataclass(frozen=True)
class Range:
    """One searched parameter: ``low``..``high`` (inclusive), log-scaled or not, int or float."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


_WEIGHTS = {
    # nce = α·MSE(x̃, x) − β·CE(f(x̃), y): only the ratio matters much, so both are log-scaled
    "nce": {"alpha": Range(1e-2, 10.0, log=True), "beta": Range(1e-2, 10.0, log=True)},
    # lrp = α·loss_relevant + (1 − α)·loss_other
    "lrp": {"alpha": Range(0.0, 1.0)},
    # susp = α·(λ·suspicious + γ·other) + (1 − α)·MSE, each a mix weight in [0, 1]
    "susp": {"alpha": Range(0.0, 1.0), "lam": Range(0.0, 1.0), "gamma": Range(0.0, 1.0)},
}
LR = Range(1e-4, 1e-2, log=True)


def search_space(loss: str, *, n_features: int, tune_lr: bool = False) -> dict[str, Range]:
    """The searched parameters of ``loss``: its weights, ``k`` for lrp (top-k relevant inputs,
    1 .. n_features // 4) and, with ``tune_lr``, ``dgn_lr`` (1e-4 .. 1e-2, log)."""
    if loss not in _WEIGHTS:
        raise ConfigError(
            f"loss must be one of {', '.join(_WEIGHTS)} to be tuned, but got loss={loss!r}"
        )
    space = dict(_WEIGHTS[loss])
    if loss == "lrp":
        space["k"] = Range(1, max(2, n_features // 4), integer=True)
    if tune_lr:
        space["dgn_lr"] = LR
    return space


def suggest(trial: Any, space: dict[str, Range]) -> dict[str, float | int]:
    """Draw one value per parameter of ``space`` from an Optuna trial."""
    values: dict[str, float | int] = {}
    for name, r in space.items():
        if r.integer:
            values[name] = trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
        else:
            values[name] = trial.suggest_float(name, r.low, r.high, log=r.log)
    return values


def defaults(
    loss: str, space: dict[str, Range], *, input_shape: Sequence[int], lr: float
) -> dict[str, float | int]:
    """The values of ``space`` that ``attack -P method=dgn`` uses when none are given: the
    loss's default weights (the seed's), for ``k`` the default top-k of ``input_shape``
    (:func:`robust.explain.default_k`) and for ``dgn_lr`` the schedule's ``lr``. A default
    outside its range is kept (Optuna warns): the defaults are scored whatever the bounds."""
    weights = dgn.LOSSES[loss].weights
    out: dict[str, float | int] = {}
    for name, r in space.items():
        if name == "k":
            out[name] = default_k(tuple(input_shape))
        elif name == "dgn_lr":
            out[name] = float(lr)
        elif name in weights:
            out[name] = int(weights[name]) if r.integer else float(weights[name])
        else:
            raise ConfigError(f"the {loss} loss has no default for the searched weight {name!r}")
    return out
