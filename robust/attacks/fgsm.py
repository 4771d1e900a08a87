"""Fast gradient method (FGSM for L∞; FGM for L2 and L1).

Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015,
https://arxiv.org/abs/1412.6572. One step of size ε along the unit-norm gradient direction of
the cross-entropy of the model's logits, clipped to [0, 1]. Seed 000 used foolbox's FGSM on
softmax outputs treated as logits; the zoo models output logits, so the gradient is the right
one here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robust.attacks import _common
from robust.attacks._norms import check_norm, project, unit


def fgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    eps: float,
    norm: str = "inf",
    *,
    use_predicted: bool = False,
    batch_size: int | None = None,
) -> Tensor:
    """Untargeted fast gradient attack.

    Args:
        model: classifier returning logits; run in eval mode, its mode restored afterwards.
        x: (N, C, H, W) float in [0, 1]; never modified.
        y: (N,) true labels; ignored (may be None) with ``use_predicted=True``.
        eps: perturbation budget in ``norm`` (≥ 0).
        norm: ``"inf"`` (default), ``"2"`` or ``"1"``.
        use_predicted: attack the model's predictions instead of ``y`` (seed 004's setting).
        batch_size: inputs per forward/backward pass; None picks one for the device
            (``_common.batch_size_for``).

    Returns:
        (N, C, H, W) tensor like ``x``: within ``eps`` of ``x`` in ``norm`` and in [0, 1].

    Example:
        >>> x_adv = fgsm(model, x, y, eps=0.3)
    """
    norm = check_norm(norm)
    _common.check_positive("eps", eps, allow_zero=True)
    if batch_size is not None:
        _common.check_count("batch_size", batch_size)
    _common.check_inputs(x, y, use_predicted)
    out = torch.empty_like(x)
    with _common.attack_mode(model) as run:
        batch_size = _common.batch_size_for(x, run.device, batch_size)
        target = _common.labels(model, x, y, use_predicted, batch_size)
        for i in range(0, len(x), batch_size):
            x0 = run.batch(x[i : i + batch_size])
            grad = _common.input_gradient(run.model, x0, target[i : i + batch_size].to(run.device))
            if norm == "inf":  # ε·sign(g) lies on the ball exactly: no projection pass
                x_adv = torch.add(x0, grad.sign_(), alpha=eps)
            else:  # a unit-norm step can round just past the ball
                x_adv = x0 + project(eps * unit(grad, norm), eps, norm)
            out[i : i + batch_size] = x_adv.clamp_(0, 1).to(out.device, out.dtype)
    return out
