"""Layer-wise relevance propagation (LRP) through an ``nn.Sequential`` classifier.

Bach et al., "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise
Relevance Propagation", PLoS ONE 2015; Montavon et al., "Explaining nonlinear classification
decisions with deep Taylor decomposition", Pattern Recognition 2017. Relevance starts as the
target logit, walks back through the layers with the rules of :mod:`robust.explain._rules`
(epsilon or z⁺, and the z^B rule of the thesis's Eq. 3.5 on the first layer), and ends on the
input. Seed 004 does not ship its LRP code ("LRP-z rule" with Eq. 3.5 in the thesis); the
defaults here (epsilon with a tiny ε, z^B first) are that rule.

No hooks are registered: the forward pass runs layer by layer, keeping each layer's input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from robust.errors import ConfigError
from robust.explain import _rules
from robust.explain._rules import EPS
from robust.utils import eval_mode, model_device


def _as_inputs(x: Tensor | np.ndarray) -> Tensor:
    x = torch.as_tensor(x).detach()
    if x.dim() < 2 or not x.is_floating_point():
        raise ConfigError(
            f"x must be a float array of shape (N, C, H, W), but got {x.dtype} of shape "
            f"{tuple(x.shape)}"
        )
    return x


def _as_target(target: Tensor | np.ndarray | None, n: int) -> Tensor | None:
    if target is None:
        return None
    target = torch.as_tensor(target).detach()
    if target.shape != (n,) or target.is_floating_point() or target.dtype == torch.bool:
        raise ConfigError(
            f"target must be integer class indices of shape ({n},), but got {target.dtype} "
            f"of shape {tuple(target.shape)}"
        )
    if n and int(target.min()) < 0:
        raise ConfigError(f"target must be at least 0, but got min(target)={int(target.min())}")
    return target.to("cpu", torch.int64)


def check_batch_size(batch_size: int) -> None:
    """Raise ConfigError unless ``batch_size`` is an int of at least 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer of at least 1, but got {batch_size=}")


def _propagate(
    layers: list[nn.Module], rules: list[_rules.Rule], x: Tensor, target: Tensor | None
) -> Tensor:
    """Relevance of one batch: forward keeping each layer's input, then the rules backwards."""
    inputs = []
    a = x
    with torch.no_grad():
        for layer in layers:
            inputs.append(a)
            a = layer(a)
    if a.dim() != 2:
        raise ConfigError(
            f"model must output logits of shape (N, classes), but got shape {tuple(a.shape)}"
        )
    if target is None:
        target = a.argmax(1)
    elif len(target) and int(target.max()) >= a.shape[1]:
        raise ConfigError(
            f"target must be below the number of logits {a.shape[1]}, but got "
            f"max(target)={int(target.max())}"
        )
    index = target.to(a.device)[:, None]
    r = torch.zeros_like(a).scatter_(1, index, a.gather(1, index))
    with torch.enable_grad():  # also when the caller runs under torch.no_grad()
        for layer, rule, a_in in zip(
            reversed(layers), reversed(rules), reversed(inputs), strict=True
        ):
            r = rule(layer, a_in, r)
    return r


@dataclass(frozen=True)
class Prepared:
    """Checked arguments of :func:`relevance`: layers with their rules, inputs and targets."""

    layers: list[nn.Module]
    rules: list[_rules.Rule]
    x: Tensor
    target: Tensor | None
    batch_size: int

    def batches(self, device: torch.device) -> Iterator[tuple[slice, Tensor]]:
        """Yield ``(rows, relevance)`` per batch on ``device``; call inside ``eval_mode``."""
        for start in range(0, len(self.x), self.batch_size):
            rows = slice(start, start + self.batch_size)
            xb = self.x[rows].to(device, torch.float32, copy=True)  # in-place layers spare x
            target = None if self.target is None else self.target[rows]
            yield rows, _propagate(self.layers, self.rules, xb, target)


def prepare(
    model: nn.Module,
    x: Tensor | np.ndarray,
    rule: str,
    *,
    target: Tensor | np.ndarray | None,
    eps: float,
    first_layer: str,
    bounds: Sequence[float],
    batch_size: int,
) -> Prepared:
    """Check every argument of :func:`relevance` before any work; raise ConfigError if wrong."""
    _rules.check_options(rule, first_layer, eps, bounds)
    check_batch_size(batch_size)
    layers = _rules.leaf_layers(model)
    rules = _rules.plan(layers, rule, first_layer, eps, bounds)
    x = _as_inputs(x)
    if first_layer == "zb" and x.numel():
        low, high = torch.aminmax(x)
        if low < bounds[0] or high > bounds[1]:
            raise ConfigError(
                f"x must lie within bounds={tuple(bounds)} for the z^B rule, but got values in "
                f"[{float(low):.3g}, {float(high):.3g}]"
            )
    target = _as_target(target, len(x))
    return Prepared([m for _, m in layers], rules, x, target, batch_size)


def relevance(
    model: nn.Module,
    x: Tensor | np.ndarray,
    rule: str = "epsilon",
    *,
    target: Tensor | np.ndarray | None = None,
    eps: float = EPS,
    first_layer: str = "zb",
    bounds: Sequence[float] = (0.0, 1.0),
    batch_size: int = 256,
) -> Tensor:
    """LRP relevance of every input value for one class per input.

    Relevance starts as the target logit (zero for the other logits) and is propagated back
    through the model's layers (nested ``nn.Sequential`` flattened): Linear and Conv2d get
    ``rule``, BatchNorm the epsilon rule on its affine map, max-pooling routes relevance to
    the argmax, and ReLU, dropout and reshapes pass it on. With zero biases, the epsilon rule
    and a tiny ``eps``, the input relevance of each sample sums to its target logit.

    Runs in eval mode (the caller's mode is restored, even on error), in batches on the
    model's device; gradients are taken on inputs only, so no parameter ``.grad`` changes.

    Args:
        model: an ``nn.Sequential`` classifier returning logits, built from the layer types
            in ``robust.explain.LAYER_RULES``.
        x: (N, C, H, W) float32 in [0, 1] (numpy is converted); never modified.
        rule: ``"epsilon"`` (z + eps·sign(z), bias included) or ``"zplus"`` (positive weights,
            no bias) for the Linear and Conv2d layers.
        target: (N,) class of each input whose logit is explained; default the predicted one.
        eps: stability constant of every rule (:data:`robust.explain.EPS`).
        first_layer: ``"zb"``: the bounded-input z^B rule (thesis Eq. 3.5) with
            ``l, h = bounds`` on the first Linear/Conv2d; ``"same"``: ``rule`` there too.
        bounds: (low, high), the smallest and largest admissible input value (z^B only).
        batch_size: inputs per forward/backward pass.

    Returns:
        (N, C, H, W) float32 relevance, shaped like ``x``, on ``x``'s device (the CPU for numpy).

    Raises:
        ConfigError: an unknown rule or first_layer, eps ≤ 0, malformed bounds or x outside
            them (z^B), a model that is not an ``nn.Sequential``, an unsupported layer type
            (the message names it and lists the supported ones), or a malformed target.

    Example:
        >>> r = relevance(model, x)             # (N, C, H, W), explains the predicted class
        >>> r.flatten(1).sum(1)                 # ≈ the logits when biases are zero
    """
    prepared = prepare(
        model,
        x,
        rule,
        target=target,
        eps=eps,
        first_layer=first_layer,
        bounds=bounds,
        batch_size=batch_size,
    )
    out = torch.empty(prepared.x.shape, dtype=torch.float32, device=prepared.x.device)
    with eval_mode(model):
        for rows, r in prepared.batches(model_device(model)):
            out[rows] = r.to(out.device, torch.float32)
    return out
