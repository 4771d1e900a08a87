"""AutoAttack: an ensemble of diverse attacks run in sequence, the field's standard evaluation.

Croce and Hein, ICML 2020, https://arxiv.org/abs/2003.01690 (RobustBench). Each attack runs
only on the inputs every earlier one left classified correctly; an input is robust when it
survives all of them, so the robust accuracy is a worst case per input over the ensemble. The
``standard`` version is APGD-CE (no restarts), APGD-T (targeted DLR, 9 target classes),
FAB-T (9 target classes) and Square (5000 queries), 100 iterations each, in L∞ or L2 (the
reference's ensemble for both norms); ``rand``, for randomised defences, is APGD-CE and
APGD-DLR with the expectation over 20 draws of the model per step (EOT) and one restart;
``custom`` runs the ``attacks`` given, in that order.
The ensemble mixes losses (CE, DLR), a minimum-norm attack and a score-based one, so a
defence that masks its gradient or rescales its logits is still broken by one of them.

The model's own random draws come from torch's generator seeded with ``seed`` (inside a fork:
the caller's random state is kept), so a randomised model's evaluation repeats exactly. As the
reference does, a ``standard`` or ``custom`` run first calls the model twice on the same
inputs and warns when the outputs differ: a randomised model needs ``version="rand"``. With
EOT, whether an input is classified correctly (clean, and after each attack) is decided on the
mean logits of ``eot_iter`` passes, so the robust accuracy is the expected classifier's, not
one lucky draw's.

Differences from the reference: every attack is ours (robust.attacks.apgd, fab, square).
"""

from __future__ import annotations

import warnings
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
    n_queries: int, seed: int, batch_size: int | None, eot_iter: int,
) -> Tensor:  # fmt: skip
    """Attack ``name`` with AutoAttack's settings (one restart, the reference's targets; EOT
    over ``eot_iter`` draws in APGD, the only attack of the reference that takes it)."""
    common = {"seed": seed, "batch_size": batch_size}
    if name == "square":
        return square(model, x, y, eps, norm, n_queries=n_queries, **common)
    if name == "fab-t":
        return fab(model, x, y, eps, norm, steps=steps, **common)
    loss = "ce" if name == "apgd-ce" else "dlr"
    return apgd(model, x, y, eps, norm, loss, targeted=name == "apgd-t", steps=steps,
                eot_iter=eot_iter, **common)  # fmt: skip


VERSIONS = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "rand": ("apgd-ce", "apgd-dlr"),
    "custom": (),
}
"""``standard``: the reference's ensemble (L∞ and L2); ``rand``: APGD-CE and APGD-DLR with
EOT, for randomised models; ``custom``: the ``attacks`` given."""

EOT_ITER = 20
"""The ``rand`` version's draws per APGD step (the reference's)."""

_PROBE = 64
"""Inputs the randomness check passes through the model twice."""


def _decide(model: nn.Module, x: Tensor, batch_size: int, eot_iter: int) -> Tensor:
    """The class of the mean logits over ``eot_iter`` passes (one pass: the prediction), on
    the CPU: a randomised model is judged by its expected output, as APGD's EOT steps are."""
    logits = predict(model, x, batch_size=batch_size)
    for _ in range(eot_iter - 1):
        logits = logits + predict(model, x, batch_size=batch_size)
    return logits.argmax(1).cpu()


def is_randomised(model: nn.Module, x: Tensor, seed: int = 0) -> bool:
    """Whether two passes of the first inputs of ``x`` through ``model`` (in eval mode) give
    different logits (beyond float noise): a randomised defence, which
    ``version="standard"`` underestimates."""
    probe = x[:_PROBE]
    if not len(probe):
        return False
    with _common.seeded_model(seed):
        first = predict(model, probe)
        second = predict(model, probe)
    return not torch.allclose(first, second, rtol=1e-4, atol=1e-5)


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
    eot_iter: int | None = None,
    use_predicted: bool = False,
    batch_size: int | None = None,
) -> AutoAttackResult:
    """Run the ensemble (see the module) and return the worst case per input.

    Args:
        model, x, y, eps, use_predicted, batch_size: as for :func:`robust.attacks.fgsm`.
        norm: ``inf`` or ``2``.
        version: ``standard``, ``rand`` or ``custom`` (then ``attacks`` names them, from
            :data:`ATTACKS`).
        steps: iterations of APGD and FAB; n_queries: Square's queries per input.
        seed: every attack's seed, and the seed of the model's own random draws.
        eot_iter: APGD's draws per step; None: :data:`EOT_ITER` for ``rand``, else 1.

    Warns:
        UserWarning: the model's outputs vary between calls but the version is not ``rand``.

    Example:
        >>> result = autoattack(model, x, y, eps=8 / 255)
        >>> result.robust_accuracy, result.counts()
    """
    norm = check_norm(norm)
    if version not in VERSIONS:
        raise ConfigError(
            f"version must be one of {', '.join(VERSIONS)}, but got version={version!r}"
        )
    if version != "custom":
        if attacks:
            raise ConfigError(f"attacks is for version=custom; version={version} runs its own")
        names = VERSIONS[version]
    else:
        names = tuple(attacks)
        if not names:
            raise ConfigError("version=custom needs attacks, e.g. attacks=('apgd-ce', 'square')")
    for name in names:
        if name not in ATTACKS:
            raise ConfigError(f"attacks must be among {', '.join(ATTACKS)}, but got {name!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"attacks must not repeat, but got {', '.join(names)}")
    if eot_iter is None:
        eot_iter = EOT_ITER if version == "rand" else 1
    _common.check_call(
        x, y, eps, use_predicted=use_predicted, batch_size=batch_size, eot_iter=eot_iter
    )
    if version != "rand" and is_randomised(model, x, seed):
        warnings.warn(
            "the model's outputs differ between two calls on the same inputs (a randomised "
            f"defence?): version={version} underestimates its robustness; use version=rand",
            stacklevel=2,
        )
    size = batch_size or 1024
    labels = _common.labels(model, x, y, use_predicted, size)

    out = x.detach().clone()
    broken_by = torch.zeros(len(x), dtype=torch.int64)
    with _common.seeded_model(seed):
        if len(x):
            broken_by[_decide(model, x, size, eot_iter) != labels] = -1
        for k, name in enumerate(names, 1):
            todo = (broken_by == 0).nonzero().squeeze(1)
            if not len(todo):
                break
            adv = _run(
                name, model, x[todo], labels[todo], eps, norm, steps, n_queries, seed,
                batch_size, eot_iter,
            )  # fmt: skip
            fooled = _decide(model, adv, size, eot_iter) != labels[todo]
            out[todo[fooled]] = adv[fooled.to(adv.device)].to(out.device, out.dtype)
            broken_by[todo[fooled]] = k
    return AutoAttackResult(out, broken_by, names)
