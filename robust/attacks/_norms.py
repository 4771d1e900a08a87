"""The geometry of the L∞, L2 and L1 balls, vectorised over the batch.

Steps follow the basic iterative method in each norm: the sign of the gradient (L∞), the
gradient scaled to unit L2 norm, or to unit L1 norm (foolbox's ``L1BasicIterativeAttack``, what
seed 000 calls "BIM"). Projection onto the ε-ball is exact for L∞ and L2; for L1 it rescales
δ onto the sphere when it lies outside (as foolbox does), which keeps every output inside the
ball. Clipping to [0, 1] afterwards only moves coordinates towards the clean input, so it never
leaves the ball.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from robust.errors import ConfigError

NORMS = ("inf", "2", "1")
_TINY = 1e-12


def check_norm(norm: str | int | float) -> str:
    """Canonical name of a norm: ``"inf"``, ``"2"`` or ``"1"`` (accepts 2, 1.0, inf, "Linf")."""
    text = str(norm).lower().removeprefix("l")
    if text in ("inf", "infinity"):
        return "inf"
    if text in ("2", "2.0", "1", "1.0"):
        return text[0]
    raise ConfigError(f"norm must be one of inf, 2, 1, but got norm={norm!r}")


def max_distance(norm: str, dim: int) -> float:
    """The largest ``norm`` distance between two inputs in [0, 1]^dim: 1 (L∞), √dim (L2) or
    dim (L1); a budget above it means "any input", not a threat model."""
    norm = check_norm(norm)
    return 1.0 if norm == "inf" else math.sqrt(dim) if norm == "2" else float(dim)


def check_eps(eps: float, norm: str = "inf", dim: int | None = None) -> None:
    """Raise a one-line ConfigError unless ``eps`` is finite, ≥ 0 and at most
    :func:`max_distance` (``dim`` None: only the L∞ bound, which needs no dimension)."""
    norm = check_norm(norm)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 <= eps < math.inf:
        raise ConfigError(f"eps must be a finite number of at least 0, but got eps={eps!r}")
    if dim is None and norm != "inf":
        return
    top = max_distance(norm, dim or 1)
    if eps > top:
        where = "" if norm == "inf" else f" of {dim} values"
        raise ConfigError(
            f"eps must be at most {top:g}, the largest L{norm} distance between two inputs"
            f"{where} in [0, 1], but got eps={eps:g}"
        )


def lp(delta: Tensor, norm: str) -> Tensor:
    """Per-sample norm of ``delta`` (N, ...) → (N,)."""
    flat = delta.flatten(1)
    if norm == "inf":
        return flat.abs().amax(1)
    if norm == "2":
        return flat.norm(p=2, dim=1)
    return flat.abs().sum(1)


def _per_sample(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def unit(grad: Tensor, norm: str) -> Tensor:
    """Steepest-ascent direction of unit norm (zero where the gradient is zero)."""
    if norm == "inf":
        return grad.sign()
    return grad / _per_sample(lp(grad, norm) + _TINY, grad)


def project(delta: Tensor, eps: float, norm: str) -> Tensor:
    """Bring ``delta`` back into the ε-ball of ``norm``."""
    if norm == "inf":
        return delta.clamp(-eps, eps)
    scale = (eps / (lp(delta, norm) + _TINY)).clamp(max=1.0)
    return delta * _per_sample(scale, delta)


def random_delta(shape: torch.Size, eps: float, norm: str, generator: torch.Generator) -> Tensor:
    """A sample drawn uniformly from the ε-ball (on the CPU, so every device sees the same)."""
    n, d = shape[0], math.prod(shape[1:])
    if norm == "inf":
        return (torch.rand(shape, generator=generator) * 2 - 1) * eps
    if norm == "2":
        g = torch.randn(n, d, generator=generator)
        r = torch.rand(n, 1, generator=generator) ** (1.0 / d)
        return (g / (g.norm(dim=1, keepdim=True) + _TINY) * r * eps).view(shape)
    # uniform in the L1 ball: d+1 exponentials normalised by their sum, random signs
    e = -torch.log(torch.rand(n, d + 1, generator=generator).clamp_min(1e-30))
    signs = torch.randint(0, 2, (n, d), generator=generator) * 2 - 1
    return (signs * e[:, :d] / e.sum(1, keepdim=True) * eps).view(shape)
