"""The Square attack: a score-based (black-box) random search in L∞.

Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020, https://arxiv.org/abs/1912.00049, §3.1.
It uses the model's scores only, never its gradient, so it is AutoAttack's check against
gradient masking: a defence that hides its gradient does not stop it.

Per sample, from vertical stripes (x + ε·s, s = ±1 per channel and column), each query moves a
random square window of side ⌈√(p·H·W)⌉ (one position and one sign per channel, drawn per
sample) to a corner of the ε-box, x + ε·sign, and keeps the move when the margin
z_y − max_{i≠y} z_i goes down; the attack stops on a sample once the margin is negative (it is
fooled). The window's share p starts at ``p_init`` and halves at the paper's iterations
10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 (of 10,000; rescaled to ``n_queries``). All
random draws come from one seeded CPU generator, made for every sample at every query, so the
result does not depend on the batch size or the device.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robust.attacks import _common
from robust.attacks._norms import check_norm
from robust.errors import ConfigError

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
"""The iterations (of 10,000) after which the window's share p halves (the paper's)."""


def window_share(p_init: float, query: int, n_queries: int) -> float:
    """p at iteration ``query`` (0-based) of ``n_queries``: ``p_init`` halved once for every
    one of the paper's marks the rescaled iteration has passed."""
    it = int(query / n_queries * 10000)
    return p_init / 2 ** sum(it > mark for mark in _HALVINGS)


def _margin(model: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> Tensor:
    """z_y − max_{i≠y} z_i per sample (negative: fooled), in chunks."""
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            z = model(x[i : i + batch_size])
            yb = y[i : i + batch_size]
            z_y = z.gather(1, yb[:, None]).squeeze(1)
            out.append(z_y - z.scatter(1, yb[:, None], -torch.inf).amax(1))
    return torch.cat(out) if out else torch.empty(0, device=x.device)


def square(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    eps: float,
    norm: str = "inf",
    n_queries: int = 5000,
    p_init: float = 0.8,
    restarts: int = 1,
    seed: int = 0,
    *,
    use_predicted: bool = False,
    batch_size: int | None = None,
) -> Tensor:
    """Square attack (L∞), untargeted, with the margin loss (see the module).

    Args:
        model, x, y, eps, use_predicted, batch_size: as for :func:`robust.attacks.fgsm`.
        norm: ``inf`` (the L2 version is not implemented yet: a one-line error).
        n_queries: model evaluations per sample and restart, the first one included (≥ 1).
        p_init: the window's initial share of the image, in (0, 1].
        restarts: runs from new stripes, each on the inputs not fooled yet.
        seed: seed of every random draw.

    Returns:
        (N, C, H, W) like ``x``: within ``eps`` of ``x`` in L∞ and in [0, 1]; per sample a
        fooling input if one was found, else the lowest-margin one.

    Example:
        >>> x_adv = square(model, x, y, eps=8 / 255, n_queries=5000)
    """
    norm = check_norm(norm)
    if norm != "inf":
        raise ConfigError(
            f"norm must be inf for square (its L2 version is not implemented yet), but got "
            f"norm={norm!r}"
        )
    _common.check_number("p_init", p_init, 0, 1, open_low=True)
    _common.check_call(
        x, y, eps, use_predicted=use_predicted, batch_size=batch_size, n_queries=n_queries,
        restarts=restarts,
    )  # fmt: skip

    n, c, h, w = x.shape
    generator = torch.Generator().manual_seed(seed)
    with _common.attack_mode(model) as run:
        batch_size = _common.batch_size_for(x, run.device, batch_size)
        labels = _common.labels(model, x, y, use_predicted, batch_size).to(run.device)
        x0 = run.batch(x)
        best = x0.clone()
        margin = _margin(run.model, x0, labels, batch_size)
        rows = torch.arange(h, device=run.device).view(1, 1, h, 1)
        cols = torch.arange(w, device=run.device).view(1, 1, 1, w)
        for _ in range(restarts):  # each run on the inputs not fooled yet, from new stripes
            stripes = torch.randint(0, 2, (n, c, 1, w), generator=generator) * 2 - 1
            todo = (margin > 0).nonzero().squeeze(1)
            cur = (x0 + eps * stripes.to(run.device, x0.dtype)).clamp(0, 1)
            cur_margin = torch.full_like(margin, torch.inf)
            cur_margin[todo] = _margin(run.model, cur[todo], labels[todo], batch_size)
            for query in range(1, n_queries):
                side = round((window_share(p_init, query - 1, n_queries) * h * w) ** 0.5)
                side = min(max(side, 1), h, w)
                top = torch.randint(0, h - side + 1, (n,), generator=generator)
                left = torch.randint(0, w - side + 1, (n,), generator=generator)
                signs = torch.randint(0, 2, (n, c), generator=generator) * 2 - 1
                active = todo[cur_margin[todo] > 0]
                if not len(active):
                    break
                t = top.to(run.device)[active].view(-1, 1, 1, 1)
                lft = left.to(run.device)[active].view(-1, 1, 1, 1)
                inside = (rows >= t) & (rows < t + side) & (cols >= lft) & (cols < lft + side)
                corner = x0[active] + eps * signs.to(run.device, x0.dtype)[active, :, None, None]
                trial = torch.where(inside, corner, cur[active]).clamp(0, 1)
                m = _margin(run.model, trial, labels[active], batch_size)
                better = m < cur_margin[active]
                cur[active[better]], cur_margin[active[better]] = trial[better], m[better]
            gain = cur_margin < margin
            best[gain], margin[gain] = cur[gain], cur_margin[gain]
    return best.to(x.device, x.dtype).contiguous()
