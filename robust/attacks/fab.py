"""FAB-T: the targeted fast adaptive boundary attack, in L∞ and L2.

Croce and Hein, "Minimally distorted adversarial examples with a fast adaptive boundary
attack", ICML 2020, https://arxiv.org/abs/1907.02044, §3 (Algorithm 1), in its targeted form
(AutoAttack's FAB-T). A minimum-norm attack: per sample and target class t it linearises the
boundary between y and t at the iterate x⁽ᵏ⁾, the hyperplane of z_t − z_y = 0, and projects
both x⁽ᵏ⁾ and the clean x onto it inside the box [0, 1] (:func:`project_on_hyperplane`,
minimal ‖·‖∞ or ‖·‖₂); the next iterate is the box-clipped mix

    x⁽ᵏ⁺¹⁾ = (1 − α)·(x⁽ᵏ⁾ + η·d⁽ᵏ⁾) + α·(x + η·d_x),  α = min(‖d⁽ᵏ⁾‖ / (‖d⁽ᵏ⁾‖ + ‖d_x‖), α_max),

with η = 1.05 (overshoot) and α_max = 0.1 (bias toward the clean input). When x⁽ᵏ⁺¹⁾ is
misclassified it is kept if it is the closest so far, and the iterate steps back toward x,
x + β·(x⁽ᵏ⁺¹⁾ − x), β = 0.9. Targets are the ``n_target_classes`` classes ranked highest after y
on the clean input; restarts after the first start at a random point of half the best norm
found (or of ε). As an ε-attack (AutoAttack) an input counts as broken when its closest
adversarial is within ε: then that one is returned, else the clean input (a run stops once
every input of its batch has one within ε).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robust.attacks import _common
from robust.attacks._norms import check_norm, lp
from robust.errors import ConfigError
from robust.models import predict

_TINY = 1e-12


def project_on_hyperplane(t: Tensor, w: Tensor, b: Tensor, norm: str) -> Tensor:
    """The smallest step d (in ``norm``: ``inf`` or ``2``) with w·(t + d) = b and t + d in
    [0, 1], per row of ``t``, ``w`` (N, D) and ``b`` (N,); where no step in the box reaches the
    hyperplane, the step to the box's corner nearest it.

    Along the direction s = sign(c)·sign(w) (c = b − w·t) each coordinate can move at most
    ``cap`` (to 1 or to 0). L∞: d_i = s_i·min(λ, cap_i); L2 (the KKT conditions): d_i =
    s_i·min(μ·|w_i|, cap_i). Both make |c| = Σ a_i·min(σ, r_i), increasing and piecewise
    linear in σ, with (a, r) = (|w|, cap) for L∞ and (w², cap/|w|) for L2; σ is found at the
    sorted breakpoints r.
    """
    c = b - (w * t).sum(1)
    s = torch.sign(c)[:, None] * torch.sign(w)
    cap = torch.where(s > 0, 1 - t, torch.where(s < 0, t, torch.zeros_like(t)))
    aw = w.abs()
    if norm == "inf":
        a, r = aw, cap
    else:
        a = aw * aw
        r = torch.where(aw > 0, cap / aw.clamp_min(_TINY), torch.zeros_like(cap))
    a = torch.where(s != 0, a, torch.zeros_like(a))
    r_sorted, order = r.sort(1)
    a_sorted = a.gather(1, order)
    prefix = torch.cumsum(a_sorted * r_sorted, 1)  # Σ_{j≤k} a_j r_j
    rest = a_sorted.flip(1).cumsum(1).flip(1)  # Σ_{j≥k} a_j
    after = torch.cat([rest[:, 1:], torch.zeros_like(rest[:, :1])], 1)  # Σ_{j>k} a_j
    g = prefix + r_sorted * after  # the value at each breakpoint
    need = c.abs()
    k = torch.searchsorted(g, need[:, None].contiguous()).squeeze(1)  # first g_k ≥ |c|
    feasible = k < g.shape[1]
    k = k.clamp(max=g.shape[1] - 1)
    before = torch.where(k > 0, prefix.gather(1, (k - 1).clamp_min(0)[:, None]).squeeze(1), 0)
    sigma = (need - before) / rest.gather(1, k[:, None]).squeeze(1).clamp_min(_TINY)
    sigma = torch.where(feasible, sigma, r_sorted[:, -1]).clamp_min(0)[:, None]
    move = torch.minimum(sigma, r) if norm == "inf" else torch.minimum(sigma, r) * aw
    return torch.where(s != 0, s * move, torch.zeros_like(t))


def _diff_and_grad(model: nn.Module, x: Tensor, y: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """z_t − z_y per sample and its input gradient (N, D)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        z = model(x)
        diff = z.gather(1, t[:, None]).squeeze(1) - z.gather(1, y[:, None]).squeeze(1)
        (grad,) = torch.autograd.grad(diff.sum(), x)
    return diff.detach(), grad.flatten(1)


def fab(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    eps: float,
    norm: str = "inf",
    steps: int = 100,
    restarts: int = 1,
    n_target_classes: int = 9,
    alpha_max: float = 0.1,
    eta: float = 1.05,
    beta: float = 0.9,
    seed: int = 0,
    *,
    use_predicted: bool = False,
    batch_size: int | None = None,
) -> Tensor:
    """FAB-T as an ε-attack (see the module).

    Args:
        model, x, y, eps, use_predicted, batch_size: as for :func:`robust.attacks.fgsm`.
        norm: ``inf`` or ``2``.
        steps: iterations per target and restart (≥ 1).
        restarts: runs per target; the second and later start at a random point.
        n_target_classes: targets tried, each on the inputs not broken yet.
        alpha_max, eta, beta: the paper's bias toward x, overshoot and backward step.
        seed: seed of the random starts (drawn on the CPU).

    Returns:
        (N, C, H, W) like ``x``: per sample the closest adversarial found if within ``eps``,
        else the clean input.

    Example:
        >>> x_adv = fab(model, x, y, eps=0.3, norm="inf", steps=100)
    """
    norm = check_norm(norm)
    if norm not in ("inf", "2"):
        raise ConfigError(f"norm must be inf or 2 for fab, but got norm={norm!r}")
    _common.check_number("alpha_max", alpha_max, 0.0, 1.0)
    _common.check_number("eta", eta, 1.0, 10.0)
    _common.check_number("beta", beta, 0.0, 1.0)
    _common.check_call(
        x, y, eps, use_predicted=use_predicted, batch_size=batch_size, steps=steps,
        restarts=restarts, n_target_classes=n_target_classes,
    )  # fmt: skip

    out = x.detach().clone()
    generator = torch.Generator().manual_seed(seed)
    with _common.attack_mode(model) as run:
        batch_size = _common.batch_size_for(x, run.device, batch_size)
        labels = _common.labels(model, x, y, use_predicted, batch_size)
        clean = predict(run.model, x, batch_size=batch_size)  # on the attacked copy
        broken = clean.argmax(1) != labels  # misclassified already: nothing to do
        ranked = clean.scatter(1, labels[:, None], -torch.inf).argsort(1, descending=True)
        best = torch.full((len(x),), torch.inf)
        for rank in range(min(n_target_classes, clean.shape[1] - 1)):
            for restart in range(restarts):
                noise = torch.rand(x.shape, generator=generator) * 2 - 1 if norm == "inf" else (
                    torch.randn(x.shape, generator=generator)
                )  # fmt: skip
                todo = (~broken).nonzero().squeeze(1)
                for i in range(0, len(todo), batch_size):
                    idx = todo[i : i + batch_size]
                    x0 = run.batch(x[idx])
                    start = None
                    if restart > 0:
                        radius = torch.clamp(best[idx], max=eps).to(run.device)
                        u = noise[idx].to(run.device)
                        u = u / (lp(u, norm) + _TINY).view(-1, 1, 1, 1)
                        start = (x0 + 0.5 * radius.view(-1, 1, 1, 1) * u).clamp(0, 1)
                    adv, dist = _run(
                        run.model, x0, labels[idx].to(run.device),
                        ranked[idx, rank].to(run.device), start, norm, steps, alpha_max,
                        eta, beta, eps,
                    )  # fmt: skip
                    dist = dist.cpu()
                    closer = dist < best[idx]
                    best[idx] = torch.where(closer, dist, best[idx])
                    hit = closer & (dist <= eps * (1 + 1e-6))
                    out[idx[hit]] = adv.to(out.device, out.dtype)[hit.to(adv.device)]
                    broken[idx] |= best[idx] <= eps * (1 + 1e-6)
    return out


def _run(
    model: nn.Module,
    x0: Tensor,
    y: Tensor,
    target: Tensor,
    start: Tensor | None,
    norm: str,
    steps: int,
    alpha_max: float,
    eta: float,
    beta: float,
    eps: float,
) -> tuple[Tensor, Tensor]:
    """One FAB-T run on a batch: the closest adversarial found and its distance (inf: none);
    it stops once every input has one within ``eps`` (an ε-attack needs no closer one)."""
    n = len(x0)
    shape = (n, *[1] * (x0.dim() - 1))
    flat0 = x0.flatten(1)
    x_k = x0.clone() if start is None else start
    adv = x0.clone()
    dist = torch.full((n,), torch.inf, device=x0.device)
    for _ in range(steps):
        diff, grad = _diff_and_grad(model, x_k, y, target)
        # the boundary, linearised at x_k: grad·z = grad·x_k − diff
        b = (grad * x_k.flatten(1)).sum(1) - diff
        both = project_on_hyperplane(
            torch.cat([x_k.flatten(1), flat0]), torch.cat([grad, grad]), torch.cat([b, b]), norm
        )
        d_k, d_0 = both[:n], both[n:]
        a_k = lp(d_k, norm).clamp_min(1e-8)
        a_0 = lp(d_0, norm).clamp_min(1e-8)
        alpha = (a_k / (a_k + a_0)).clamp(0, alpha_max).view(shape)
        x_k = (
            (1 - alpha) * (x_k + eta * d_k.view_as(x_k)) + alpha * (x0 + eta * d_0.view_as(x0))
        ).clamp(0, 1)
        with torch.no_grad():
            fooled = model(x_k).argmax(1) != y
        size = lp(x_k - x0, norm)
        closer = fooled & (size < dist)
        adv[closer], dist[closer] = x_k[closer], size[closer]
        back = fooled.view(shape)
        x_k = torch.where(back, x0 + beta * (x_k - x0), x_k)
        if bool((dist <= eps * (1 + 1e-6)).all()):
            break
    return adv, dist
