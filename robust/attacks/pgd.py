"""Projected gradient descent (PGD) and the basic iterative method (BIM), in L∞, L2 and L1.

Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018,
https://arxiv.org/abs/1706.06083; Kurakin, Goodfellow and Bengio, "Adversarial examples in the
physical world", 2016, https://arxiv.org/abs/1607.02533. Each step: gradient of the
cross-entropy of the logits with respect to the input only, a step of ``step_size`` along its
unit-norm direction, projection onto the ε-ball, clipping to [0, 1].

Differences from the libraries the seeds used: PGD returns per sample its best iterate (the
first that fools the model, else the highest loss; ``keep="last"`` for the last, as ART and
foolbox do; BIM keeps the last, as seed 000's foolbox did); with ``restarts > 1`` the strongest
restart is kept **per sample** (a run that fools the model, the highest loss among those; else
the highest loss; ties to the earlier run), where ART keeps the whole restart with the best
dataset-level success rate; the random start is drawn on the CPU from one seeded generator per
call, so results do not depend on ``batch_size`` or the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robust.attacks import _common
from robust.attacks._norms import check_norm, project, random_delta, unit
from robust.errors import ConfigError

KEEP = ("best", "last")
"""What a PGD run returns per sample: its best iterate or its last."""


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    eps: float,
    steps: int = 20,
    step_size: float | None = None,
    norm: str = "inf",
    random_start: bool = True,
    restarts: int = 1,
    seed: int = 0,
    *,
    keep: str = "best",
    use_predicted: bool = False,
    batch_size: int | None = None,
) -> Tensor:
    """Untargeted PGD with per-sample best over iterates and restarts.

    Args:
        model, x, y, eps, norm, use_predicted, batch_size: as for :func:`robust.attacks.fgsm`.
        steps: iterations per restart (≥ 1).
        step_size: absolute step length in ``norm``; None means 2.5·ε/steps (Madry et al.).
        random_start: start from a uniform sample of the ε-ball (else from ``x``).
        restarts: independent starts; each sample keeps its strongest result.
        seed: seed of the random starts.
        keep: ``best`` (default): per sample the first iterate that fools the model, else the
            one of highest loss (the start included), as APGD keeps; ``last``: the last
            iterate (ART's and foolbox's PGD/BIM).

    Returns:
        (N, C, H, W) tensor like ``x``: within ``eps`` of ``x`` in ``norm`` and in [0, 1].

    Example:
        >>> x_adv = pgd(model, x, y, eps=0.3, steps=20, step_size=0.01)
    """
    norm = check_norm(norm)
    _common.check_positive("eps", eps, allow_zero=True)
    _common.check_count("steps", steps)
    _common.check_count("restarts", restarts)
    if batch_size is not None:
        _common.check_count("batch_size", batch_size)
    if step_size is None:
        step_size = 2.5 * eps / steps
    _common.check_positive("step_size", step_size, allow_zero=eps == 0)
    _common.check_inputs(x, y, use_predicted)
    if keep not in KEEP:
        raise ConfigError(f"keep must be one of {', '.join(KEEP)}, but got keep={keep!r}")

    best = x.detach().clone()
    best_loss = torch.full((len(x),), -torch.inf)
    best_fooled = torch.zeros(len(x), dtype=torch.bool)
    generator = torch.Generator().manual_seed(seed)
    with _common.attack_mode(model) as run:
        batch_size = _common.batch_size_for(x, run.device, batch_size)
        target = _common.labels(model, x, y, use_predicted, batch_size)
        for _ in range(restarts):
            noise = random_delta(x.shape, eps, norm, generator) if random_start else None
            for i in range(0, len(x), batch_size):
                sl = slice(i, i + batch_size)
                x0 = run.batch(x[sl])
                yb = target[sl].to(run.device)
                start = noise[sl].to(run.device) if noise is not None else None
                x_adv = _iterate(run.model, x0, yb, eps, steps, step_size, norm, start, keep)
                if restarts == 1:  # nothing to choose: skip the selection's forward pass
                    best[sl] = x_adv.to(best.device, best.dtype)
                    continue
                with torch.no_grad():
                    logits = run.model(x_adv)
                    loss = F.cross_entropy(logits, yb, reduction="none").cpu()
                    fooled = (logits.argmax(1) != yb).cpu()
                # stronger: fools where the best did not, or equally fooling with higher loss
                better = (fooled & ~best_fooled[sl]) | (
                    (fooled == best_fooled[sl]) & (loss > best_loss[sl])
                )
                take = better.to(best.device)
                chunk = best[sl]  # a view: assignment writes into best
                chunk[take] = x_adv.to(best.device, best.dtype)[take]
                best_loss[sl] = torch.where(better, loss, best_loss[sl])
                best_fooled[sl] |= fooled
    return best


def bim(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    norm: str = "inf",
    *,
    use_predicted: bool = False,
    batch_size: int | None = None,
) -> Tensor:
    """Basic iterative method: PGD from the clean input, one run, the last iterate (Kurakin et
    al., 2016; foolbox's BIM, which seed 000 used).

    ``bim(..., norm="1", eps=0.05, steps=10, step_size=0.01)`` is what seed 000 calls "BIM"
    (foolbox's L1BasicIterativeAttack, rel_stepsize 0.2); ``norm="2"`` is what it calls "CW".
    """
    return pgd(
        model,
        x,
        y,
        eps,
        steps,
        step_size,
        norm,
        random_start=False,
        restarts=1,
        keep="last",
        use_predicted=use_predicted,
        batch_size=batch_size,
    )


def _iterate(
    model: nn.Module,
    x0: Tensor,
    y: Tensor,
    eps: float,
    steps: int,
    step_size: float,
    norm: str,
    start: Tensor | None,
    keep: str = "last",
) -> Tensor:
    """One PGD run from ``x0 + start`` (or ``x0``): its last iterate, or with ``keep="best"``
    per sample the first one that fools the model, else the one of highest loss."""
    x_adv = x0 if start is None else (x0 + start).clamp(0, 1)
    if keep == "last":
        for _ in range(steps):
            grad = _common.input_gradient(model, x_adv, y)
            x_adv = x_adv + step_size * unit(grad, norm)
            x_adv = (x0 + project(x_adv - x0, eps, norm)).clamp(0, 1).detach()
        return x_adv
    best = x_adv.clone()
    best_loss = torch.full((len(x0),), -torch.inf, device=x0.device)
    fooled = torch.zeros(len(x0), dtype=torch.bool, device=x0.device)
    for k in range(steps + 1):  # the loss at each iterate comes with its gradient
        x_in = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model(x_in)
            loss = F.cross_entropy(logits, y, reduction="none")
            grad = torch.autograd.grad(loss.sum(), x_in)[0] if k < steps else None
        hit = logits.detach().argmax(1) != y
        take = ~fooled & (hit | (loss.detach() > best_loss))
        best[take] = x_adv[take]
        best_loss = torch.where(take, loss.detach(), best_loss)
        fooled |= hit
        if grad is None:
            break
        x_adv = x_adv + step_size * unit(grad, norm)
        x_adv = (x0 + project(x_adv - x0, eps, norm)).clamp(0, 1).detach()
    return best
