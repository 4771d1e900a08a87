"""Checks that a robustness number is not an artefact of gradient masking: :func:`masking_checks`.

Carlini et al. 2019, "On Evaluating Adversarial Robustness" (§5, the sanity checks a reviewer
asks for), and Athalye, Carlini and Wagner 2018 (obfuscated gradients). Four checks, each a
number, the threshold it is held to, and a flag:

* ``unbounded``: with ε as large as the box allows (L∞: 1; L2: √d) a white-box attack must
  bring the accuracy to about 0 (every input can be moved anywhere); a model that stays
  accurate hides its gradient from the attack;
* ``not_converged``: more steps and restarts must not lower the robust accuracy by more than
  ``margin`` (else the reported attack had not converged);
* ``black_box_stronger``: the score-based Square attack (in the same norm) must not beat the
  white-box APGD by more than ``margin`` (a gradient that misleads shows up as a black-box
  attack doing better);
* ``zero_gradient``: the share of inputs whose loss gradient is exactly 0 must stay below
  ``max_zero_gradient`` (a rounding, a step function or a saturated softmax gives 0).

A flag is evidence of masking, not proof; no flag is not proof of robustness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robust.attacks import apgd, square
from robust.attacks._common import attack_mode, input_gradient
from robust.attacks._norms import check_norm
from robust.errors import ConfigError
from robust.models import predict


@dataclass(frozen=True)
class Check:
    """One check's value, the threshold it is held to, whether it flags masking, and why."""

    name: str
    value: float
    threshold: float
    flagged: bool
    message: str


def _check(name: str, value: float, threshold: float, found: str, warning: str) -> Check:
    """A check flagged when ``value`` exceeds ``threshold``; its message is what was
    ``found``, with the ``warning`` when flagged."""
    flagged = value > threshold
    return Check(name, value, threshold, flagged, found + (f": {warning}" if flagged else ""))


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return float((predict(model, x).argmax(1).cpu() == y.cpu()).double().mean())


def masking_checks(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    norm: str = "inf",
    *,
    steps: int = 20,
    more: int = 5,
    n_queries: int = 1000,
    margin: float = 0.02,
    max_zero_gradient: float = 0.1,
    max_unbounded_accuracy: float = 0.05,
    seed: int = 0,
) -> list[Check]:
    """Run the four checks (see the module) on ``model`` at ``eps`` and return them in order.

    Args:
        model, x, y, eps, norm: the evaluation being checked (``norm`` ``inf`` or ``2``).
        steps: APGD-CE iterations of the reference attack; ``more``: the factor of steps and
            the restarts of the stronger one it is compared with.
        n_queries: Square's queries.
        margin: how much lower a stronger attack may push the accuracy before a flag.
        max_zero_gradient, max_unbounded_accuracy: the other two checks' thresholds.
        seed: every attack's seed.

    Example:
        >>> [c.name for c in masking_checks(model, x, y, 0.3) if c.flagged]
        []
    """
    norm = check_norm(norm)
    if norm not in ("inf", "2"):
        raise ConfigError(f"norm must be inf or 2 for the masking checks, but got norm={norm!r}")
    for name, value in (("margin", margin), ("max_zero_gradient", max_zero_gradient),
                        ("max_unbounded_accuracy", max_unbounded_accuracy)):  # fmt: skip
        if not 0 <= value <= 1:
            raise ConfigError(f"{name} must be in [0, 1], but got {name}={value}")
    if isinstance(more, bool) or not isinstance(more, int) or more < 2:
        raise ConfigError(f"more must be an integer of at least 2, but got more={more!r}")
    y = torch.as_tensor(y).to(torch.int64)
    checks = []

    big = 1.0 if norm == "inf" else math.sqrt(x[0].numel())
    acc = _accuracy(model, apgd(model, x, y, big, norm, steps=steps, seed=seed), y)
    checks.append(_check(
        "unbounded", acc, max_unbounded_accuracy,
        f"with ε = {big:.3g} (the whole box) APGD-CE leaves {acc:.1%} accurate",
        "the attack does not get through; the gradient may be masked",
    ))  # fmt: skip

    base = _accuracy(model, apgd(model, x, y, eps, norm, steps=steps, seed=seed), y)
    strong = _accuracy(
        model, apgd(model, x, y, eps, norm, steps=steps * more, restarts=more, seed=seed), y
    )
    drop = base - strong
    checks.append(_check(
        "not_converged", drop, margin,
        f"APGD-CE {steps} steps: {base:.1%}; {steps * more} steps × {more} restarts: "
        f"{strong:.1%}", "the weaker attack had not converged",
    ))  # fmt: skip

    black = _accuracy(model, square(model, x, y, eps, norm, n_queries=n_queries, seed=seed), y)
    gap = strong - black
    checks.append(_check(
        "black_box_stronger", gap, margin,
        f"Square ({n_queries} queries): {black:.1%}; APGD-CE: {strong:.1%}",
        "a score-based attack beats the gradient one; the gradient may mislead",
    ))  # fmt: skip

    with attack_mode(model) as run:
        grads = torch.cat([
            input_gradient(run.model, run.batch(x[i : i + 256]), y[i : i + 256].to(run.device))
            .flatten(1).abs().amax(1).cpu()
            for i in range(0, len(x), 256)
        ])  # fmt: skip
    zero = float((grads == 0).double().mean())
    checks.append(_check(
        "zero_gradient", zero, max_zero_gradient,
        f"{zero:.1%} of the inputs have an exactly zero loss gradient",
        "the gradient is masked (rounding, a step, a saturated output)",
    ))  # fmt: skip
    return checks
