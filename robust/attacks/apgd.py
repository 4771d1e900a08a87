"""Auto-PGD (APGD): PGD with momentum and a step size that adapts itself, in L∞ and L2.

Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020, https://arxiv.org/abs/2003.01690, §3 (Algorithm 1). Per
sample, from a random start on the ε-sphere's box (L∞: ``x + ε·t/‖t‖∞``, t uniform in
[−1, 1]; L2: ``x + ε·g/‖g‖₂``, g Gaussian), with step size η⁽⁰⁾ = 2ε:

* z = P(x⁽ᵏ⁾ + η·d(∇f(x⁽ᵏ⁾))) (d: the sign in L∞, the L2-normalised gradient in L2), then
  x⁽ᵏ⁺¹⁾ = P(x⁽ᵏ⁾ + α·(z − x⁽ᵏ⁾) + (1 − α)·(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾)) with α = 0.75 (1 at the first
  step); P projects onto the ε-ball and clips to [0, 1];
* at the checkpoints w_j = ⌈p_j·N⌉ (p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} −
  0.03, 0.06)) the step size is halved and the iterate restarts from the best point so far
  when, since the last checkpoint, the loss went up in fewer than ρ·(w_j − w_{j−1}) steps, or
  neither the step size nor the best loss changed;
* the result is per sample: an iterate that fools the model, else the one of highest loss.

Losses: ``ce`` (cross-entropy) and ``dlr`` (difference of logits ratio, invariant to a shift
and scale of the logits: −(z_y − max_{i≠y} z_i)/(z_π1 − z_π3)); targeted (APGD-T), the
targeted DLR −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2) (or −CE toward t), once for each of the
``n_target_classes`` classes the clean input ranks highest after its own. A restart or a
target runs only on the inputs not fooled yet (as AutoAttack does), and success always means
the prediction differs from y.

Randomised models (AutoAttack's ``rand`` version): with ``eot_iter`` k > 1 every step takes the
expectation over transformation (Athalye et al. 2018): the loss and the input gradient are the
means over k forward/backward passes, an iterate fools the model when the mean logits do, and
the result is the iterate of highest mean loss (every step runs: a fooling iterate near the
boundary would flip back under the next draws). The model's own random draws come from torch's
generator seeded with ``seed`` inside a fork, so a randomised model gives the same result on
every run and the caller's random state is left as it was.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robust.attacks import _common
from robust.attacks._norms import check_norm, lp, project, unit
from robust.errors import ConfigError
from robust.models import predict

LOSSES = ("ce", "dlr")
"""The losses APGD maximises."""
_TINY = 1e-12


def checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD may halve its step size: ⌈p_j·steps⌉ for p_j ≤ 1, j ≥ 1.

    Example:
        >>> checkpoints(100)
        [22, 41, 57, 70, 80, 87, 93, 99]
    """
    p = [0.0, 0.22]
    while True:
        nxt = p[-1] + max(p[-1] - p[-2] - 0.03, 0.06)
        if nxt > 1:
            break
        p.append(nxt)
    out = sorted({math.ceil(q * steps - 1e-9) for q in p[1:]})
    return [w for w in out if 0 < w <= steps]


def dlr_loss(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    """Per-sample DLR loss (higher = closer to misclassified); targeted toward ``target``.

    Untargeted: −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3); targeted:
    −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2), π sorting the logits in decreasing order.
    """
    top, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    if target is None:
        other = logits.scatter(1, y[:, None], -torch.inf).amax(1)
        return -(z_y - other) / (top[:, 0] - top[:, 2] + _TINY)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + _TINY)


def _loss(logits: Tensor, y: Tensor, loss: str, target: Tensor | None) -> Tensor:
    if loss == "dlr":
        return dlr_loss(logits, y, target)
    if target is None:
        return F.cross_entropy(logits, y, reduction="none")
    return -F.cross_entropy(logits, target, reduction="none")


def apgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    eps: float,
    norm: str = "inf",
    loss: str = "ce",
    targeted: bool = False,
    steps: int = 100,
    restarts: int = 1,
    n_target_classes: int = 9,
    rho: float = 0.75,
    seed: int = 0,
    *,
    eot_iter: int = 1,
    use_predicted: bool = False,
    batch_size: int | None = None,
) -> Tensor:
    """APGD-CE / APGD-DLR, or APGD-T with ``targeted`` (see the module).

    Args:
        model, x, y, eps, use_predicted, batch_size: as for :func:`robust.attacks.fgsm`.
        norm: ``inf`` or ``2``.
        loss: ``ce`` or ``dlr`` (targeted: the targeted DLR, AutoAttack's APGD-T).
        targeted: run once toward each of the ``n_target_classes`` classes ranked highest
            after y on the clean input (each on the inputs not fooled yet).
        steps: iterations per run (≥ 1); restarts: runs per target (each on the inputs not
            fooled yet, from a new random start); rho: the checkpoint's success fraction.
        seed: seed of the random starts (drawn on the CPU: results do not depend on the
            batch size or device).
        eot_iter: forward/backward passes averaged per step (1: a deterministic model; 20:
            AutoAttack's ``rand`` version for randomised defences).

    Returns:
        (N, C, H, W) like ``x``: within ``eps`` of ``x`` in ``norm`` and in [0, 1].

    Raises:
        ConfigError: a bad setting (one line), e.g. DLR with fewer than 3 classes (4 targeted).

    Example:
        >>> x_adv = apgd(model, x, y, eps=8 / 255, loss="dlr", targeted=True)
    """
    norm = check_norm(norm)
    if norm not in ("inf", "2"):
        raise ConfigError(f"norm must be inf or 2 for apgd, but got norm={norm!r}")
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, but got loss={loss!r}")
    if isinstance(rho, bool) or not isinstance(rho, int | float) or not 0 < rho < 1:
        raise ConfigError(f"rho must be a number in (0, 1), but got rho={rho!r}")
    _common.check_call(
        x, y, eps, use_predicted=use_predicted, batch_size=batch_size, steps=steps,
        restarts=restarts, n_target_classes=n_target_classes, eot_iter=eot_iter,
    )  # fmt: skip

    best = x.detach().clone()
    generator = torch.Generator().manual_seed(seed)
    with _common.seeded_model(seed), _common.attack_mode(model) as run:
        batch_size = _common.batch_size_for(x, run.device, batch_size)
        labels = _common.labels(model, x, y, use_predicted, batch_size)
        clean = predict(run.model, x, batch_size=batch_size)  # on the attacked copy
        classes = clean.shape[1]
        need = 4 if targeted and loss == "dlr" else 3 if loss == "dlr" else 2
        if classes < need:
            raise ConfigError(
                f"loss={loss}{' targeted' if targeted else ''} needs at least {need} classes, "
                f"but the model has {classes}"
            )
        fooled = clean.argmax(1) != labels
        if targeted:
            ranked = clean.scatter(1, labels[:, None], -torch.inf).argsort(1, descending=True)
            targets = [ranked[:, i] for i in range(min(n_target_classes, classes - 1))]
        else:
            targets = [None]
        for target in targets:
            for _ in range(restarts):
                start = _random_start(x.shape, eps, norm, generator)
                todo = (~fooled).nonzero().squeeze(1)
                for i in range(0, len(todo), batch_size):
                    idx = todo[i : i + batch_size]
                    x0 = run.batch(x[idx])
                    x_adv, hit = _run(
                        run.model, x0, labels[idx].to(run.device),
                        None if target is None else target[idx].to(run.device),
                        start[idx].to(run.device), eps, norm, loss, steps, rho, eot_iter,
                    )  # fmt: skip
                    best[idx] = x_adv.to(best.device, best.dtype)
                    fooled[idx] |= hit.cpu()
    return best


def _random_start(shape: torch.Size, eps: float, norm: str, generator: torch.Generator) -> Tensor:
    """δ on the boundary of the ε-ball's box (L∞) or sphere (L2), seeded, on the CPU."""
    if norm == "inf":
        t = torch.rand(shape, generator=generator) * 2 - 1
        return eps * t / (lp(t, "inf").view(-1, *[1] * (len(shape) - 1)) + _TINY)
    g = torch.randn(shape, generator=generator)
    return eps * g / (lp(g, "2").view(-1, *[1] * (len(shape) - 1)) + _TINY)


def _loss_and_grad(
    model: nn.Module, x: Tensor, y: Tensor, loss: str, target: Tensor | None, eot_iter: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample loss, its input gradient, and whether the model is fooled, at ``x``: each
    the mean over ``eot_iter`` passes (the model may draw at random in each)."""
    x = x.detach().requires_grad_(True)
    values, grad, logits = 0.0, torch.zeros_like(x), 0.0
    with torch.enable_grad():
        for _ in range(eot_iter):
            out = model(x)
            value = _loss(out, y, loss, target)
            grad += torch.autograd.grad(value.sum(), x)[0]
            values, logits = values + value.detach(), logits + out.detach()
    return values / eot_iter, grad / eot_iter, logits.argmax(1) != y


def _run(
    model: nn.Module,
    x0: Tensor,
    y: Tensor,
    target: Tensor | None,
    start: Tensor,
    eps: float,
    norm: str,
    loss: str,
    steps: int,
    rho: float,
    eot_iter: int = 1,
) -> tuple[Tensor, Tensor]:
    """One APGD run on a batch: the per-sample result and whether it fools the model."""

    def proj(v: Tensor) -> Tensor:
        return (x0 + project(v - x0, eps, norm)).clamp(0, 1)

    n = len(x0)
    shape = (n, *[1] * (x0.dim() - 1))
    x_k = proj(x0 + start)
    f_k, grad, hit = _loss_and_grad(model, x_k, y, loss, target, eot_iter)
    result = x_k.clone()  # the fooling iterate, else the best
    fooled = hit.clone()
    x_best, f_best, grad_best = x_k.clone(), f_k.clone(), grad.clone()
    fooled_best = hit.clone()
    eta = torch.full(shape, 2.0 * eps, device=x0.device)
    x_prev = x_k
    marks = checkpoints(steps)
    last_mark, increases = 0, torch.zeros(n, device=x0.device)
    f_best_at_mark = f_best.clone()
    halved_at_mark = torch.ones(n, dtype=torch.bool, device=x0.device)  # no test at w₀
    for k in range(steps):
        alpha = 0.75 if k > 0 else 1.0
        z = proj(x_k + eta * unit(grad, norm))
        x_next = proj(x_k + alpha * (z - x_k) + (1 - alpha) * (x_k - x_prev))
        x_prev = x_k
        f_next, grad, hit = _loss_and_grad(model, x_next, y, loss, target, eot_iter)
        increases += (f_next > f_k).float()
        new = hit & ~fooled
        result[new] = x_next[new]
        fooled |= hit
        better = f_next > f_best
        x_best[better], f_best[better], grad_best[better] = (
            x_next[better], f_next[better], grad[better]
        )  # fmt: skip
        x_k, f_k = x_next, f_next
        if k + 1 in marks:
            window = k + 1 - last_mark
            stalled = increases < rho * window
            unchanged = ~halved_at_mark & (f_best <= f_best_at_mark)
            halve = stalled | unchanged
            eta[halve] /= 2
            back = halve.view(shape)  # restart from the best point, without momentum
            x_k = torch.where(back, x_best, x_k)
            x_prev = torch.where(back, x_best, x_prev)
            f_k = torch.where(halve, f_best, f_k)
            grad = torch.where(back, grad_best, grad)
            halved_at_mark, f_best_at_mark = halve, f_best.clone()
            increases.zero_()
            last_mark = k + 1
        if eot_iter > 1:  # a randomised model: its best iterate may stop fooling it
            fooled_best[better] = hit[better]
        elif fooled.all():  # every result is fixed: the first fooling iterate
            break
    if eot_iter > 1:
        return x_best.detach(), fooled_best
    result[~fooled] = x_best[~fooled]
    return result.detach(), fooled
