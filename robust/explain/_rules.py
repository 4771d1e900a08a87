"""LRP rules: how the relevance at a layer's output flows back to the layer's input.

Bach et al., "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise
Relevance Propagation", PLoS ONE 2015 (the epsilon rule); Montavon et al., "Explaining
nonlinear classification decisions with deep Taylor decomposition", Pattern Recognition 2017
(the z⁺ rule and the bounded-input z^B rule, the thesis's Eq. 3.5).

Every rule is a small class called as ``rule(layer, a, r) -> r_in`` with ``a`` the layer's
input and ``r`` the relevance of its output. Weighted rules use the gradient trick of
Montavon et al. 2019 ("Layer-Wise Relevance Propagation: An Overview"): ``z = f(a)``,
``s = r / stabilised(z)``, ``c = ∂z/∂a ᵀ s`` (one ``autograd.grad`` on the input only) and
``r_in = a · c``, vectorised over the batch. :data:`LAYER_RULES` attaches a rule to each
supported layer type; any other type is an error that names it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robust.errors import ConfigError
from robust.models.layers import FlattenHWC

EPS = 1e-6
"""Default stability constant of every rule: ``z → z + EPS·sign(z)`` (sign(0) = +1).

A guard against division by zero, not a denoiser: it changes each ratio by a factor
``|z| / (|z| + EPS)``, under 1e-5 for the usual ``|z| ≥ 0.1``, so the default is LRP-0 (the
thesis's "LRP-z") in float32, while a dead pre-activation (z = 0) still gives a finite ratio.
Captum uses 1e-9 (below float32 resolution for such z); the "LRP-ε" of Montavon et al. 2019
uses ~0.25·std(z) to absorb weak, noisy contributions.
"""

RULES = ("epsilon", "zplus")
"""Rules for the Linear and Conv2d layers, the ``rule`` argument of ``relevance``."""

FIRST_LAYER_RULES = ("zb", "same")
"""``first_layer`` choices: the z^B rule (Eq. 3.5) on the first Linear/Conv2d, or ``rule``."""


def _stabilise(z: Tensor, eps: float) -> Tensor:
    """``z + eps·sign(z)`` with sign(0) = +1, so the result is never zero."""
    return torch.where(z >= 0, z + eps, z - eps)


def _weighted(layer: nn.Module, a: Tensor, weight: Tensor) -> Tensor:
    """``layer``'s Linear/Conv2d map with ``weight`` in place of its own and no bias."""
    if isinstance(layer, nn.Conv2d):
        return layer._conv_forward(a, weight, None)  # keeps stride, padding, dilation, groups
    return F.linear(a, weight)


class Rule:
    """How the relevance ``r`` at ``layer``'s output flows back to its input ``a``."""

    def __call__(self, layer: nn.Module, a: Tensor, r: Tensor) -> Tensor:
        """a: the layer's input (n, ...); r: relevance shaped like its output → like ``a``."""
        raise NotImplementedError


class PassRule(Rule):
    """Element-wise activations and eval-mode dropout: relevance passes unchanged."""

    def __call__(self, layer: nn.Module, a: Tensor, r: Tensor) -> Tensor:
        return r


class RouteRule(Rule):
    """Reshapes and max-pooling: ``r_in = (∂z/∂a)ᵀ r``, relevance routed like a gradient.

    For ``MaxPool2d`` this is winner-take-all (each window's relevance goes to its argmax);
    for ``Flatten``/``FlattenHWC`` it is the inverse reshape. Both conserve relevance.
    """

    def __call__(self, layer: nn.Module, a: Tensor, r: Tensor) -> Tensor:
        a = a.detach().requires_grad_(True)
        (c,) = torch.autograd.grad(layer(a), a, r)
        return c


@dataclass(frozen=True)
class EpsilonRule(Rule):
    """LRP-ε (Bach et al. 2015): ``r_i = Σ_j a_i w_ij / (z_j + ε·sign(z_j)) · r_j``.

    ``z = layer(a)`` includes the bias, so a non-zero bias absorbs (or adds) relevance. Also
    used for BatchNorm in eval mode, the element-wise affine map ``w·a + b``.
    """

    eps: float = EPS

    def __call__(self, layer: nn.Module, a: Tensor, r: Tensor) -> Tensor:
        a = a.detach().requires_grad_(True)
        z = layer(a)
        (c,) = torch.autograd.grad(z, a, r / _stabilise(z.detach(), self.eps))
        return a.detach() * c


@dataclass(frozen=True)
class ZPlusRule(Rule):
    """z⁺ (Montavon et al. 2017): ``r_i = Σ_j a_i w⁺_ij / (Σ_i' a_i' w⁺_i'j + ε) · r_j``.

    Positive weights only, no bias: conservative for non-negative inputs (post-ReLU).
    """

    eps: float = EPS

    def __call__(self, layer: nn.Module, a: Tensor, r: Tensor) -> Tensor:
        a = a.detach().requires_grad_(True)
        z = _weighted(layer, a, layer.weight.detach().clamp(min=0))
        (c,) = torch.autograd.grad(z, a, r / _stabilise(z.detach(), self.eps))
        return a.detach() * c


@dataclass(frozen=True)
class ZBRule(Rule):
    """z^B for inputs bounded by ``low ≤ a ≤ high`` (Montavon et al. 2017; thesis Eq. 3.5).

    ``r_i = Σ_j (a_i w_ij − l_i w⁺_ij − h_i w⁻_ij) / Σ_i' (a_i' w_i'j − l_i' w⁺_i'j −
    h_i' w⁻_i'j) · r_j``, no bias. Each numerator is ``(a−l)·w⁺ + (a−h)·w⁻ ≥ 0`` inside the
    bounds, so the rule conserves relevance and never flips its sign.
    """

    low: float
    high: float
    eps: float = EPS

    def __call__(self, layer: nn.Module, a: Tensor, r: Tensor) -> Tensor:
        weight = layer.weight.detach()
        a = a.detach().requires_grad_(True)
        low = torch.full_like(a, self.low, requires_grad=True)
        high = torch.full_like(a, self.high, requires_grad=True)
        z = (
            _weighted(layer, a, weight)
            - _weighted(layer, low, weight.clamp(min=0))
            - _weighted(layer, high, weight.clamp(max=0))
        )
        s = r / _stabilise(z.detach(), self.eps)
        c, c_low, c_high = torch.autograd.grad(z, (a, low, high), s)
        return a.detach() * c + low.detach() * c_low + high.detach() * c_high


_RULE_CLASSES: dict[str, type[Rule]] = {
    "epsilon": EpsilonRule,
    "zplus": ZPlusRule,
    "zb": ZBRule,
    "pass": PassRule,
    "route": RouteRule,
}

_MAIN = "main"
LAYER_RULES: dict[type[nn.Module], str] = {
    nn.Linear: _MAIN,
    nn.Conv2d: _MAIN,
    nn.BatchNorm1d: "epsilon",
    nn.BatchNorm2d: "epsilon",
    nn.ReLU: "pass",
    nn.Dropout: "pass",
    nn.Identity: "pass",
    nn.MaxPool2d: "route",
    nn.Flatten: "route",
    FlattenHWC: "route",
}
"""Rule of each supported layer type (exact type): ``"main"`` is the ``rule`` argument, with
z^B for the first Linear/Conv2d when ``first_layer="zb"``; BatchNorm always gets epsilon."""


def supported_layers() -> str:
    """The supported layer type names, comma-separated, for error messages."""
    return ", ".join(t.__name__ for t in LAYER_RULES)


def leaf_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers of an ``nn.Sequential`` in forward order, nested Sequentials flattened.

    Raises:
        ConfigError: ``model`` is not an ``nn.Sequential`` or has no layers.
    """
    if not isinstance(model, nn.Sequential):
        raise ConfigError(
            "model must be an nn.Sequential (LRP walks its layers backwards), but got "
            f"model of type {type(model).__name__}"
        )

    def walk(module: nn.Sequential, prefix: str) -> list[tuple[str, nn.Module]]:
        out: list[tuple[str, nn.Module]] = []
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            out += walk(child, f"{full}.") if isinstance(child, nn.Sequential) else [(full, child)]
        return out

    layers = walk(model, "")
    if not layers:
        raise ConfigError("model must have at least one layer, but got an empty nn.Sequential")
    return layers


def check_options(rule: str, first_layer: str, eps: float, bounds: Sequence[float]) -> None:
    """Raise ConfigError unless every rule option is valid."""
    if rule not in RULES:
        raise ConfigError(f"rule must be one of {', '.join(RULES)}, but got {rule=}")
    if first_layer not in FIRST_LAYER_RULES:
        raise ConfigError(
            f"first_layer must be one of {', '.join(FIRST_LAYER_RULES)}, but got {first_layer=}"
        )
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < math.inf:
        raise ConfigError(f"eps must be a finite number greater than 0, but got {eps=}")
    if (
        not isinstance(bounds, Sequence)
        or len(bounds) != 2
        or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
        or not -math.inf < bounds[0] < bounds[1] < math.inf
    ):
        raise ConfigError(
            f"bounds must be two finite numbers (low, high) with low < high, but got {bounds=}"
        )


def plan(
    layers: list[tuple[str, nn.Module]],
    rule: str,
    first_layer: str,
    eps: float,
    bounds: Sequence[float],
) -> list[Rule]:
    """One rule per layer, looked up by exact layer type in :data:`LAYER_RULES`.

    Raises:
        ConfigError: an unsupported layer type (the message lists the supported ones), a
            MaxPool2d returning indices, a BatchNorm without running statistics, or a layer
            other than a reshape, pooling, ReLU, dropout or identity before the first
            Linear/Conv2d when ``first_layer="zb"`` (the bounds would not hold there).
    """
    rules: list[Rule] = []
    first_done = False
    for name, layer in layers:
        kind = LAYER_RULES.get(type(layer))
        if kind is None:
            raise ConfigError(
                f"every layer must have one of the types {supported_layers()}, but got "
                f"layer {name!r} of type {type(layer).__name__}"
            )
        if isinstance(layer, nn.MaxPool2d) and layer.return_indices:
            raise ConfigError(
                f"MaxPool2d must output a tensor, but got layer {name!r} with return_indices=True"
            )
        if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d) and layer.running_var is None:
            raise ConfigError(
                "BatchNorm must track running statistics to be an affine map in eval mode, but "
                f"got layer {name!r} with track_running_stats=False"
            )
        if kind == "epsilon" and not first_done and first_layer == "zb":
            raise ConfigError(
                "first_layer='zb' needs the input bounds to hold at the first Linear/Conv2d, "
                f"but got {type(layer).__name__} layer {name!r} before it; use first_layer='same'"
            )
        if kind == _MAIN:
            kind = "zb" if first_layer == "zb" and not first_done else rule
            first_done = True
        if kind == "zb":
            rules.append(ZBRule(float(bounds[0]), float(bounds[1]), float(eps)))
        elif kind in ("epsilon", "zplus"):
            rules.append(_RULE_CLASSES[kind](float(eps)))
        else:
            rules.append(_RULE_CLASSES[kind]())
    return rules
