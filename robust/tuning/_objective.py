"""The tuning objectives: train DGNs on one split, generate on another, score the result.

* success rate: among the inputs the model classifies correctly, the fraction whose
  prediction changes on the generated input (maximise);
* perturbation: the mean L2 norm of x_gen − x over those same inputs (minimise). L2, not L∞:
  generation clips to ε in L∞, so the L∞ distance saturates at ε and barely separates trials.

A trial trains exactly as ``attack -P method=dgn`` trains with the same settings: one
:func:`robust.attacks.dgn.train` call with :func:`robust.attacks.dgn.train_options` of the flat
settings and the same seed, so the success rate a trial scores on a split is the
``<split>/success_rate`` the attack logs there with those weights and that schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from robust.attacks import dgn
from robust.errors import ConfigError
from robust.evaluation import predict


@dataclass(frozen=True)
class Scores:
    """What one set of generators achieves on the validation split."""

    success_rate: float
    """Fraction of correctly classified inputs whose prediction changed, in [0, 1]."""
    l2_mean: float
    """Mean L2 norm of x_gen − x over the same inputs."""


def scores(model: nn.Module, gens: dgn.Generators, x: Tensor, y: Tensor) -> Scores:
    """Score ``gens`` on (x, y): x (N, C, H, W) float32 in [0, 1], y (N,) labels.

    Every input is generated and predicted as the attack stage does (label route, batches of
    1024), so the success rate equals the attack report's on the same split."""
    pred = predict(model, x, batch_size=1024).argmax(1).cpu()
    correct = pred == y.cpu()
    if not correct.any():
        return Scores(0.0, 0.0)
    x_gen = gens.generate(x, y).to(x.device)
    flipped = (predict(model, x_gen, batch_size=1024).argmax(1).cpu() != pred) & correct
    l2 = (x_gen - x).flatten(1).float().norm(dim=1).cpu()
    return Scores(float(flipped.sum() / correct.sum()), float(l2[correct].mean()))


def checkpoints(epochs: int, every: int | None) -> list[int]:
    """The epochs at which a pruned trial is scored before the end: every, 2·every, … below
    ``epochs`` (none without ``every``)."""
    if every is None:
        return []
    if every < 1:
        raise ConfigError(f"every must be at least 1, but got {every=}")
    return list(range(every, epochs, every))


def train_scored(
    model: nn.Module,
    train: Any,
    val: Any,
    settings: Mapping[str, Any],
    *,
    seed: int = 0,
    classes: Sequence[int] | None = None,
    every: int | None = None,
    report: Callable[[int, Scores], None] | None = None,
) -> Scores:
    """Train one DGN per class on ``train`` (``.x``, ``.y``) and score them on ``val``.

    ``settings``: the attack stage's flat DGN settings, resolved (``loss``, its weights,
    ``eps``, ``dgn_epochs``, ``dgn_lr``, ``dgn_batch_size`` and any other option
    :func:`robust.attacks.dgn.train_options` reads, e.g. ``k``, ``architecture``). The
    training is that call with ``seed``: the generators the attack trains with these settings.

    With ``every`` the trial is also scored after every ``every`` epochs and
    ``report(epoch, scores)`` called (it may raise, e.g. ``optuna.TrialPruned``, to stop).
    Each of those scores comes from a fresh training of that many epochs with the same seed,
    which is exactly the first epochs of the full training (same initial weights, batches and
    Adam steps; the learning rate is constant), so the intermediate scores are those of the
    full training at that epoch and the final score equals one uninterrupted training's. The
    cost: a completed trial trains every + 2·every + … epochs more than the full ones.
    """
    options = dgn.train_options(settings)
    epochs = int(options["epochs"])
    points = checkpoints(epochs, every)

    def fit(n: int) -> dgn.Generators:
        return dgn.train(
            model, train.x, train.y, **(options | {"epochs": n}), seed=seed, classes=classes,
            progress=False,
        )  # fmt: skip

    for n in points if report is not None else []:
        report(n, scores(model, fit(n), val.x, val.y))
    return scores(model, fit(epochs), val.x, val.y)
