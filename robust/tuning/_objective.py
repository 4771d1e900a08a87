"""The tuning objectives: train DGNs on one split, generate on another, score the result.

* success rate: among the inputs the model classifies correctly, the fraction whose
  prediction changes on the generated input (maximise);
* perturbation: the mean L2 norm of x_gen − x over those same inputs (minimise). L2, not L∞:
  generation clips to ε in L∞, so the L∞ distance saturates at ε and barely separates trials.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
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
    """Score ``gens`` on (x, y): x (N, C, H, W) float32 in [0, 1], y (N,) labels."""
    clean = predict(model, x).argmax(1).cpu()
    correct = clean == y.cpu()
    if not correct.any():
        return Scores(0.0, 0.0)
    x_ok, y_ok = x[correct], y[correct]
    x_gen = gens.generate(x_ok, y_ok).to(x_ok.device)
    changed = predict(model, x_gen).argmax(1).cpu() != y_ok.cpu()
    l2 = (x_gen - x_ok).flatten(1).norm(dim=1)
    return Scores(float(changed.float().mean()), float(l2.mean()))


def train_scored(
    model: nn.Module,
    train: Any,
    val: Any,
    loss: str,
    weights: dict[str, float],
    *,
    eps: float,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    k: int | None = None,
    every: int | None = None,
    report: Callable[[int, Scores], None] | None = None,
    classes: Any = None,
) -> Scores:
    """Train one DGN per class on ``train`` (``.x``, ``.y``) and score them on ``val``.

    With ``every`` the training runs in chunks of that many epochs, each continuing from the
    last one's weights (Adam's moments start afresh per chunk), and ``report(epoch, scores)``
    is called after each chunk; it may raise (e.g. ``optuna.TrialPruned``) to stop early.
    Without ``every`` it trains all ``epochs`` in one go and scores once.
    """
    if every is not None and every < 1:
        raise ConfigError(f"every must be at least 1, but got {every=}")
    step = every or epochs
    gens, done = None, 0
    while done < epochs:
        n = min(step, epochs - done)
        gens = dgn.train(
            model, train.x, train.y, loss, eps=eps, epochs=n, lr=lr, batch_size=batch_size,
            seed=seed + done, k=k, progress=False, init=gens, classes=classes, **weights,
        )  # fmt: skip
        done += n
        if report is not None and done < epochs:
            with torch.no_grad():
                report(done, scores(model, gens, val.x, val.y))
    return scores(model, gens, val.x, val.y)
