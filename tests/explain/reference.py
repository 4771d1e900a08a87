"""An explicit LRP reference for the tests: per-connection contributions, no gradient trick.

Every Linear/Conv2d becomes a dense matrix ``M`` (out, in); the relevance of input i is
``Σ_j contrib_ji / z_j · r_j`` with ``contrib`` written out per rule; max-pooling routes each
window's relevance to the position holding its maximum.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robust.explain import EPS
from robust.models.layers import FlattenHWC


def dense(layer: nn.Linear | nn.Conv2d, in_shape: tuple[int, ...]) -> Tensor:
    """(out, in) matrix of the bias-free layer acting on flattened inputs of ``in_shape``."""
    if isinstance(layer, nn.Linear):
        return layer.weight.detach()
    n = math.prod(in_shape)
    basis = torch.eye(n).view(n, *in_shape)
    with torch.no_grad():
        return layer._conv_forward(basis, layer.weight, None).flatten(1).T


def weighted(m: Tensor, bias: Tensor, a: Tensor, r: Tensor, kind: str, bounds, eps) -> Tensor:
    """a: (N, in), r: (N, out) → (N, in), with contrib (N, out, in) written out."""
    if kind == "epsilon":
        contrib = m * a[:, None, :]
        z = contrib.sum(2) + bias
    elif kind == "zplus":
        contrib = m.clamp(min=0) * a[:, None, :]
        z = contrib.sum(2)
    else:  # zb
        low, high = bounds
        contrib = m * a[:, None, :] - m.clamp(min=0) * low - m.clamp(max=0) * high
        z = contrib.sum(2)
    z = torch.where(z >= 0, z + eps, z - eps)
    return (contrib / z[:, :, None] * r[:, :, None]).sum(1)


def max_pool_route(pool: nn.MaxPool2d, a: Tensor, r: Tensor) -> Tensor:
    """Non-overlapping k×k pooling (floor mode): each window's relevance goes to its maximum."""
    k = pool.kernel_size
    up = lambda t: t.repeat_interleave(k, 2).repeat_interleave(k, 3)  # noqa: E731
    h, w = a.shape[2:]
    pad = (0, w - r.shape[3] * k, 0, h - r.shape[2] * k)
    winner = a == F.pad(up(pool(a)), pad, value=math.nan)
    return winner * F.pad(up(r), pad)


def lrp(
    layers: list[nn.Module],
    x: Tensor,
    target: Tensor,
    rule: str = "epsilon",
    first_layer: str = "zb",
    bounds=(0.0, 1.0),
    eps: float = EPS,
) -> Tensor:
    """Relevance of ``x`` for ``target`` through ``layers`` (modules in eval mode)."""
    acts = [x]
    with torch.no_grad():
        for layer in layers:
            acts.append(layer(acts[-1]))
    logits = acts.pop()
    r = torch.zeros_like(logits)
    r[torch.arange(len(x)), target] = logits[torch.arange(len(x)), target]
    first = next(i for i, m in enumerate(layers) if isinstance(m, nn.Linear | nn.Conv2d))
    for i in reversed(range(len(layers))):
        layer, a = layers[i], acts[i]
        if isinstance(layer, nn.Linear | nn.Conv2d):
            kind = "zb" if i == first and first_layer == "zb" else rule
            bias = torch.zeros(1) if layer.bias is None else layer.bias.detach()
            if isinstance(layer, nn.Conv2d):  # one bias per output channel and position
                bias = bias.repeat_interleave(r[0].numel() // len(bias))
            m = dense(layer, tuple(a.shape[1:]))
            r = weighted(m, bias, a.flatten(1), r.flatten(1), kind, bounds, eps).view_as(a)
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            scale = layer.weight / torch.sqrt(layer.running_var + layer.eps)
            shift = layer.bias - layer.running_mean * scale
            if a.dim() == 4:
                scale, shift = scale[:, None, None], shift[:, None, None]
            g = a * scale + shift
            r = (a * scale / torch.where(g >= 0, g + eps, g - eps) * r).detach()
        elif isinstance(layer, nn.MaxPool2d):
            r = max_pool_route(layer, a, r)
        elif isinstance(layer, FlattenHWC):
            n, c, h, w = a.shape
            r = r.view(n, h, w, c).permute(0, 3, 1, 2)
        elif isinstance(layer, nn.Flatten):
            r = r.view_as(a)
        # ReLU, Dropout, Identity: relevance passes unchanged
    return r
