"""TRADES: CE(f(x), y) + β·KL(softmax f(x) ‖ softmax f(x')), x' maximising the KL in the ε-ball.

Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy", ICML 2019,
https://arxiv.org/abs/1901.08573; reference code github.com/yaodongyu/TRADES (``trades.py``).
:func:`trades_pgd` is the inner maximisation (L∞): from x + 0.001·N(0, I), ``steps`` sign
steps up the gradient of KL(softmax f(x) ‖ softmax f(x')) with respect to x', each projected
onto the ε-ball around x and clipped to [0, 1], the model in eval mode. :func:`trades_loss` is
the outer objective, with the reference's reduction: the KL summed over the batch and classes,
divided by the batch size (``nn.KLDivLoss(size_average=False)(...) / batch_size``, that is
``F.kl_div(..., reduction="batchmean")``). The reference's defaults: β = 6, ε = 0.031,
10 steps of 0.007 on CIFAR-10; β = 1, ε = 0.3, 40 steps of 0.01 on MNIST.

Differences from the reference code, on purpose: the Gaussian start is drawn from a local,
seeded ``torch.Generator`` on the CPU (the same seed gives the same start on any device and for
any ``batch_size``); softmax f(x) is computed once per batch, not once per step (it does not
depend on x', so the steps are the same); the model's train/eval mode is restored afterwards
(the reference always leaves it in train mode); the gradient is taken with
``torch.autograd.grad`` on x' only, so no parameter's ``.grad`` changes. The outer loss takes
the clean logits of one forward pass for both its terms, where the reference runs f(x) twice
(the same numbers without dropout). Only L∞ is implemented (the reference's L2 branch, an SGD
on δ, is not).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robust.attacks import check_eps
from robust.errors import ConfigError
from robust.utils import eval_mode, model_device

START_STD = 0.001
"""Standard deviation of the Gaussian start x + 0.001·N(0, I) (the reference's)."""


def trades_pgd(
    model: nn.Module,
    x: Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    *,
    seed: int = 0,
    batch_size: int = 1024,
) -> Tensor:
    """TRADES's inner maximisation: x' within ε of x (L∞) maximising KL(f(x) ‖ f(x')).

    It needs no labels: the target is the model's own softmax on the clean input.

    Args:
        model: outputs (N, num_classes) logits; run in eval mode, its mode restored afterwards.
        x: (N, C, H, W) (or any (N, ...)) float in [0, 1]; not modified.
        eps: L∞ budget, ≥ 0.
        steps: sign steps, ≥ 1; each costs one forward and backward pass.
        step_size: absolute step; None means 2.5·ε/steps (ε/4 at the reference's 10 steps:
            0.0078 at ε = 0.031, where the reference took 0.007).
        seed: seeds the Gaussian start (a local generator on the CPU).
        batch_size: inputs per pass, ≥ 1 (the result does not depend on it).

    Returns:
        A tensor of x's shape, dtype and device: within ``eps`` of x in L∞ and in [0, 1].

    Raises:
        ConfigError: an argument out of range, or x not a float tensor in [0, 1].

    Example:
        >>> x_adv = trades_pgd(model, x, eps=8 / 255, steps=10, seed=0)
    """
    step_size = check_trades_pgd(eps, steps, step_size, seed, batch_size)
    _check_inputs(x)

    generator = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float32)
    with eval_mode(model):
        device = model_device(model)
        chunks = [
            _maximise_kl(
                model,
                x[i : i + batch_size].detach().to(device, torch.float32),
                START_STD * noise[i : i + batch_size].to(device),
                float(eps),
                steps,
                float(step_size),
            ).to(x.device, x.dtype)
            for i in range(0, len(x), batch_size)
        ]
    return torch.cat(chunks) if chunks else x.detach().clone()


def trades_kl(logits: Tensor, logits_adv: Tensor) -> Tensor:
    """KL(softmax(logits) ‖ softmax(logits_adv)), summed over classes, mean over the batch.

    The reference's ``nn.KLDivLoss(size_average=False)(log_softmax(logits_adv),
    softmax(logits)) / batch_size``; gradients flow into both arguments, as there.

    Args:
        logits, logits_adv: (N, num_classes) logits of the clean and the perturbed inputs.

    Returns:
        A scalar tensor, ≥ 0 (in nats).
    """
    return F.kl_div(
        F.log_softmax(logits_adv, dim=1), F.softmax(logits, dim=1), reduction="batchmean"
    )


def trades_loss(logits: Tensor, logits_adv: Tensor, y: Tensor, beta: float = 6.0) -> Tensor:
    """The TRADES objective CE(logits, y) + β·KL(softmax(logits) ‖ softmax(logits_adv)).

    Args:
        logits, logits_adv: (N, num_classes) logits of the clean inputs and of their
            :func:`trades_pgd` counterparts.
        y: (N,) int64 labels.
        beta: weight β of the KL term, ≥ 0 (reference: 6 on CIFAR-10, 1 on MNIST; 1/λ in the
            paper).

    Returns:
        A scalar tensor: mean cross-entropy plus β times :func:`trades_kl`.

    Example:
        >>> loss = trades_loss(model(x), model(trades_pgd(model, x, eps=0.3)), y, beta=6.0)
    """
    check_beta(beta)
    return F.cross_entropy(logits, y) + beta * trades_kl(logits, logits_adv)


def check_trades_pgd(
    eps: float, steps: int, step_size: float | None, seed: int, batch_size: int
) -> float:
    """Raise a ConfigError unless :func:`trades_pgd`'s settings are in range; return the step
    size (None: 2.5·ε/steps)."""
    check_eps(eps)
    _check_count("steps", steps)
    _check_count("batch_size", batch_size)
    if step_size is None:
        step_size = 2.5 * eps / steps
    number = isinstance(step_size, Real) and not isinstance(step_size, bool)
    if not number or not (0 < step_size < math.inf or step_size == eps == 0):
        raise ConfigError(
            f"step_size must be a finite number greater than 0, but got {step_size=}"
        )
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, but got {seed=}")
    return float(step_size)


def check_beta(beta: float) -> None:
    """Raise a ConfigError unless β is a finite number ≥ 0."""
    if isinstance(beta, bool) or not isinstance(beta, Real) or not 0 <= beta < math.inf:
        raise ConfigError(f"beta must be a finite number of at least 0, but got {beta=}")


def _maximise_kl(
    model: nn.Module, x0: Tensor, start: Tensor, eps: float, steps: int, step_size: float
) -> Tensor:
    """``steps`` projected sign steps up KL(f(x0) ‖ f(x')) from x0 + start (one batch)."""
    with torch.no_grad():
        probs = F.softmax(model(x0), dim=1)
    x_adv = x0 + start
    for _ in range(steps):
        x_in = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            kl = F.kl_div(F.log_softmax(model(x_in), dim=1), probs, reduction="sum")
            (grad,) = torch.autograd.grad(kl, x_in)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.minimum(torch.maximum(x_adv, x0 - eps), x0 + eps).clamp(0, 1)
    return x_adv.detach()


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ConfigError(f"{name} must be an integer of at least 1, but got {name}={value!r}")


def _check_inputs(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() < 2 or not x.is_floating_point():
        raise ConfigError(
            f"x must be a float tensor of shape (N, C, H, W), but got {type(x).__name__} of "
            f"shape {tuple(getattr(x, 'shape', ()))}"
        )
    if x.numel():
        low, high = torch.aminmax(x)
        if low < 0 or high > 1:
            raise ConfigError(f"x must lie in [0, 1], but got values in [{low:.3g}, {high:.3g}]")
