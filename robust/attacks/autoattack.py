"""AutoAttack: an ensemble of diverse attacks run in sequence, the field's standard evaluation.

Croce and Hein, ICML 2020, https://arxiv.org/abs/2003.01690 (RobustBench). Each attack runs
only on the inputs every earlier one left classified correctly; an input is robust when it
survives all of them, so the robust accuracy is a worst case per input over the ensemble. The
``standard`` version is APGD-CE (no restarts), APGD-T (targeted DLR, 9 target classes),
FAB-T (9 target classes) and Square (5000 queries), 100 iterations each, in L∞ or L2 (the
reference's ensemble for both norms); ``custom`` runs the ``attacks`` given, in that order.
The ensemble mixes losses (CE, DLR), a minimum-norm attack and a score-based one, so a
defence that masks its gradient or rescales its logits is still broken by one of them.

Differences from the reference: every attack is ours (robust.attacks.apgd, fab, square);
the ``rand`` version (EOT for randomised defences) is not implemented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robust.attacks import _common
from robust.attacks._norms import check_norm
from robust.attacks.apgd import apgd
from robust.attacks.fab import fab
from robust.attacks.square import square
from robust.errors import ConfigError
from robust.models import predict

ATTACKS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square")
"""The attacks AutoAttack can run, by name (APGD-T uses the targeted DLR loss)."""


def _run(
    name: str, model: nn.Module, x: Tensor, y: Tensor, eps: float, norm: str, steps: int,
    n_queries: int, seed: int, batch_size: int | None,
) -> Tensor:  # fmt: skip
    """Attack ``name`` with AutoAttack's settings (one restart, the reference's targets)."""
    common = {"seed": seed, "batch_size": batch_size}
    if name == "square":
        return square(model, x, y, eps, norm, n_queries=n_queries, **common)
    if name == "fab-t":
        return fab(model, x, y, eps, norm, steps=steps, **common)
    loss = "ce" if name == "apgd-ce" else "dlr"
    return apgd(model, x, y, eps, norm, loss, targeted=name == "apgd-t", steps=steps, **common)


VERSIONS = {"standard": ("apgd-ce", "apgd-t", "fab-t", "square"), "custom": ()}
"""``standard``: the reference's ensemble (L∞ and L2); ``custom``: the ``attacks`` given."""


@dataclass(frozen=True)
class AutoAttackResult:
    """The worst case per input: ``x_adv`` (the input itself when robust or misclassified
    already) and ``broken_by`` (N,): 0 robust, −1 misclassified without attack, k ≥ 1 broken
    by ``attacks[k − 1]``."""

    x_adv: Tensor
    broken_by: Tensor
    attacks: tuple[str, ...]

    @property
    def robust_accuracy(self) -> float:
        """The share of inputs no attack broke (and classified correctly to begin with)."""
        return float((self.broken_by == 0).double().mean()) if len(self.broken_by) else 0.0

    def counts(self) -> dict[str, int]:
        """Inputs per outcome: ``clean_error``, each attack's name, ``robust``."""
        out = {"clean_error": int((self.broken_by == -1).sum())}
        out |= {a: int((self.broken_by == k).sum()) for k, a in enumerate(self.attacks, 1)}
        return out | {"robust": int((self.broken_by == 0).sum())}


def autoattack(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    eps: float,
    norm: str = "inf",
    version: str = "standard",
    attacks: Sequence[str] = (),
    steps: int = 100,
    n_queries: int = 5000,
    seed: int = 0,
    *,
    use_predicted: bool = False,
    batch_size: int | None = None,
) -> AutoAttackResult:
    """Run the ensemble (see the module) and return the worst case per input.

    Args:
        model, x, y, eps, use_predicted, batch_size: as for :func:`robust.attacks.fgsm`.
        norm: ``inf`` or ``2``.
        version: ``standard`` or ``custom`` (then ``attacks`` names them, from :data:`ATTACKS`).
        steps: iterations of APGD and FAB; n_queries: Square's queries per input.
        seed: every attack's seed.

    Example:
        >>> result = autoattack(model, x, y, eps=8 / 255)
        >>> result.robust_accuracy, result.counts()
    """
    norm = check_norm(norm)
    if version not in VERSIONS:
        raise ConfigError(
            f"version must be one of {', '.join(VERSIONS)}, but got version={version!r}"
        )
    if version == "standard":
        if attacks:
            raise ConfigError("attacks is for version=custom; version=standard runs its own")
        names = VERSIONS["standard"]
    else:
        names = tuple(attacks)
        if not names:
            raise ConfigError("version=custom needs attacks, e.g. attacks=('apgd-ce', 'square')")
    for name in names:
        if name not in ATTACKS:
            raise ConfigError(f"attacks must be among {', '.join(ATTACKS)}, but got {name!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"attacks must not repeat, but got {', '.join(names)}")
    _common.check_call(x, y, eps, use_predicted=use_predicted, batch_size=batch_size)
    size = batch_size or 1024
    labels = _common.labels(model, x, y, use_predicted, size)

    out = x.detach().clone()
    broken_by = torch.zeros(len(x), dtype=torch.int64)
    if len(x):
        broken_by[predict(model, x, batch_size=size).argmax(1).cpu() != labels] = -1
    for k, name in enumerate(names, 1):
        todo = (broken_by == 0).nonzero().squeeze(1)
        if not len(todo):
            break
        adv = _run(
            name, model, x[todo], labels[todo], eps, norm, steps, n_queries, seed, batch_size
        )
        fooled = predict(model, adv, batch_size=size).argmax(1).cpu() != labels[todo]
        out[todo[fooled]] = adv[fooled.to(adv.device)].to(out.device, out.dtype)
        broken_by[todo[fooled]] = k
    return AutoAttackResult(out, broken_by, names)
