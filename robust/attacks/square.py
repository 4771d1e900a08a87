"""The Square attack: a score-based (black-box) random search in L∞ or L2.

Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020, https://arxiv.org/abs/1912.00049, §3.1 (L∞)
and §3.2 (L2, Algorithm 3). It uses the model's scores only, never its gradient, so it is
AutoAttack's check against gradient masking: a defence that hides its gradient does not stop it.

Per sample, each query changes the perturbation δ inside random square windows and keeps the
change when the margin z_y − max_{i≠y} z_i goes down; the attack stops on a sample once the
margin is negative (it is fooled). The window's share p of the image starts at ``p_init`` and
halves at the paper's iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 (of 10,000;
rescaled to ``n_queries``).

* L∞: from vertical stripes (x + ε·s, s = ±1 per channel and column), a query moves one window
  of side round(√(p·H·W)) (one position and one sign per channel) to a corner of the ε-box,
  x + ε·sign.
* L2: from a centred grid of tiles of side ⌊min(H, W)/5⌋ (at least 1), each holding the pattern
  η below with a sign per channel, rescaled onto the sphere ‖δ‖₂ = ε, a query draws two windows
  of side round(√(p·H·W)) (made odd, at least 3, at most the image). It moves the mass of δ in
  both into the first, as the first's old content at unit norm per channel plus ±η, empties the
  second, and gives the new window the norm per channel √((ε² − ‖δ‖²)/C + its old mass in the
  two windows), so that δ stays on the ε-sphere; δ is rescaled to ε, then x + δ is clipped to
  [0, 1]. η (unit L2 norm) is two halves of opposite sign, rows [0, s/2) and [s/2, s), each of
  concentric square rings around its centre, Σ_{k≥r} 1/(k+1)² at Chebyshev distance r; it is
  transposed at random.

All random draws come from one seeded CPU generator, made for every sample at every query, so
the result does not depend on the batch size or the device. Differences from the reference
(fra31/auto-attack, ``autoattack/square.py``): every window, sign and transpose is drawn per
sample (it draws one window per query for the whole batch), a window may also sit at the last
position H − s (it never draws that one), and the L2 start keeps whole tiles only.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from robust.attacks import _common
from robust.attacks._norms import check_norm, unit
from robust.errors import ConfigError

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
"""The iterations (of 10,000) after which the window's share p halves (the paper's)."""

_TINY = 1e-12


def window_share(p_init: float, query: int, n_queries: int) -> float:
    """p at iteration ``query`` (0-based) of ``n_queries``: ``p_init`` halved once for every
    one of the paper's marks the rescaled iteration has passed."""
    it = int(query / n_queries * 10000)
    return p_init / 2 ** sum(it > mark for mark in _HALVINGS)


def _rings(a: int, b: int) -> Tensor:
    """(a, b) float64 of unit L2 norm (empty when a is 0): around the centre (a // 2, b // 2),
    Σ_{k=r}^{K−1} 1/(k+1)² at Chebyshev distance r, K = max(a, b) // 2 + 1."""
    i = (torch.arange(a) - a // 2).abs().view(-1, 1)
    j = (torch.arange(b) - b // 2).abs().view(1, -1)
    heights = 1.0 / torch.arange(1, max(a, b) // 2 + 2, dtype=torch.float64) ** 2
    tails = heights.flip(0).cumsum(0).flip(0)  # tails[r] = Σ_{k≥r} heights[k]
    out = tails[torch.maximum(i, j)]
    return out / (out.norm() + _TINY)


@functools.lru_cache(maxsize=64)
def meta_pattern(side: int) -> Tensor:
    """The L2 window's pattern η (side, side), float32 of unit L2 norm: the rings of the top
    ⌊side/2⌋ rows minus those of the other rows (see the module). Cached: do not modify it."""
    out = torch.cat([_rings(side // 2, side), -_rings(side - side // 2, side)])
    return (out / out.norm()).float()


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


def _window(top: Tensor, left: Tensor, side: int, h: int, w: int) -> Tensor:
    """(M, 1, H, W) bool: the square of ``side`` at (``top``, ``left``) (M,) per sample."""
    rows = torch.arange(h, device=top.device).view(1, 1, h, 1)
    cols = torch.arange(w, device=top.device).view(1, 1, 1, w)
    t, lft = top.view(-1, 1, 1, 1), left.view(-1, 1, 1, 1)
    return (rows >= t) & (rows < t + side) & (cols >= lft) & (cols < lft + side)


def _stripes(x0: Tensor, eps: float, generator: torch.Generator) -> Tensor:
    """The L∞ start: x + ε·s clipped, s = ±1 per sample, channel and column."""
    n, c, _, w = x0.shape
    stripes = torch.randint(0, 2, (n, c, 1, w), generator=generator) * 2 - 1
    return (x0 + eps * stripes.to(x0.device, x0.dtype)).clamp(0, 1)


def _tiles(x0: Tensor, eps: float, generator: torch.Generator) -> Tensor:
    """The L2 start: a centred grid of tiles of side ⌊min(H, W)/5⌋ (≥ 1), each ±η per sample
    and channel (η transposed per sample and tile at random), rescaled to ε and clipped."""
    n, c, h, w = x0.shape
    side = max(min(h, w) // 5, 1)
    grid = []
    for size in (h, w):  # per axis: the tile of every pixel (−1: none) and its place in it
        offset = max((size - 5 * side) // 2, 0)
        n_tiles = (size - offset) // side
        at = torch.arange(size) - offset
        inside = (at >= 0) & (at < n_tiles * side)
        grid.append((torch.where(inside, at // side, -1), at % side, n_tiles))
    (tile_r, r, n_r), (tile_c, q, n_c) = grid
    signs = torch.randint(0, 2, (n, c, n_r, n_c), generator=generator) * 2 - 1
    flips = torch.randint(0, 2, (n, n_r, n_c), generator=generator).bool()
    eta = meta_pattern(side)
    tr, tc = tile_r.clamp_min(0).view(-1, 1), tile_c.clamp_min(0).view(1, -1)
    pattern = torch.where(
        flips[:, tr, tc], eta[q.view(1, -1), r.view(-1, 1)], eta[r.view(-1, 1), q.view(1, -1)]
    )
    covered = (tile_r.view(-1, 1) >= 0) & (tile_c.view(1, -1) >= 0)
    delta = (signs[:, :, tr, tc] * (pattern * covered)[:, None]).to(x0.device, x0.dtype)
    return (x0 + unit(delta, "2") * eps).clamp(0, 1)


def _linf_move(x0: Tensor, cur: Tensor, eps: float, side: int, draws: dict[str, Tensor]) -> Tensor:
    """One L∞ query per sample: window 1 of ``cur`` moved to the corner x0 + ε·sign."""
    _, _, h, w = x0.shape
    inside = _window(draws["top"], draws["left"], side, h, w)
    corner = x0 + eps * draws["signs"].to(x0.dtype)[:, :, None, None]
    return torch.where(inside, corner, cur).clamp(0, 1)


def _l2_move(x0: Tensor, cur: Tensor, eps: float, side: int, draws: dict[str, Tensor]) -> Tensor:
    """One L2 query per sample: the mass of δ = cur − x0 in windows 1 and 2 goes to window 1,
    as its old content at unit norm plus ±η, δ kept on the ε-sphere (see the module)."""
    _, c, h, w = x0.shape
    delta = cur - x0
    first = _window(draws["top"], draws["left"], side, h, w)
    second = _window(draws["top2"], draws["left2"], side, h, w)
    mass = delta.square()
    old = (mass * first).sum((2, 3), keepdim=True).sqrt()  # (M, C, 1, 1)
    both = (mass * (first | second)).sum((2, 3), keepdim=True)
    free = (eps**2 - mass.sum((1, 2, 3), keepdim=True)).clamp_min(0) / c
    # η placed at window 1 (transposed where flipped), ±1 per channel
    eta = meta_pattern(side).to(x0.device, x0.dtype)
    r = torch.arange(h, device=x0.device).view(1, h, 1) - draws["top"].view(-1, 1, 1)
    q = torch.arange(w, device=x0.device).view(1, 1, w) - draws["left"].view(-1, 1, 1)
    r, q = r.clamp(0, side - 1), q.clamp(0, side - 1)
    pattern = torch.where(draws["flips"].view(-1, 1, 1), eta[q, r], eta[r, q])[:, None]
    new = (pattern * draws["signs"].to(x0.dtype)[:, :, None, None] + delta / (old + _TINY)) * first
    new = new / (new.square().sum((2, 3), keepdim=True).sqrt() + _TINY) * (free + both).sqrt()
    delta = torch.where(first, new, delta * ~second)
    return (x0 + unit(delta, "2") * eps).clamp(0, 1)


def window_side(norm: str, p: float, h: int, w: int) -> int:
    """The window's side for share ``p`` of an H × W image: round(√(p·H·W)), in L2 made odd
    and at least 3 (the reference's); at most the image's shorter side, at least 1."""
    side = round((p * h * w) ** 0.5)
    if norm == "2":
        side = max(side, 3) | 1
    return min(max(side, 1), h, w)


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
    """Square attack (L∞ or L2), untargeted, with the margin loss (see the module).

    Args:
        model, x, y, eps, use_predicted, batch_size: as for :func:`robust.attacks.fgsm`.
        norm: ``inf`` or ``2``.
        n_queries: model evaluations per sample and restart, the first one included (≥ 1).
        p_init: the window's initial share of the image, in (0, 1].
        restarts: runs from a new start (stripes or tiles), each on the inputs not fooled yet.
        seed: seed of every random draw.

    Returns:
        (N, C, H, W) like ``x``: within ``eps`` of ``x`` in ``norm`` (L2: up to float rounding)
        and in [0, 1]; per sample a fooling input if one was found, else the lowest-margin one.

    Example:
        >>> x_adv = square(model, x, y, eps=8 / 255, n_queries=5000)
        >>> x_adv = square(model, x, y, eps=0.5, norm="2", n_queries=5000)
    """
    norm = check_norm(norm)
    if norm not in ("inf", "2"):
        raise ConfigError(f"norm must be inf or 2 for square, but got norm={norm!r}")
    _common.check_number("p_init", p_init, 0, 1, open_low=True)
    _common.check_call(
        x, y, eps, use_predicted=use_predicted, batch_size=batch_size, n_queries=n_queries,
        restarts=restarts,
    )  # fmt: skip

    n, c, h, w = x.shape
    start, move = (_stripes, _linf_move) if norm == "inf" else (_tiles, _l2_move)
    generator = torch.Generator().manual_seed(seed)
    with _common.attack_mode(model) as run:
        batch_size = _common.batch_size_for(x, run.device, batch_size)
        labels = _common.labels(model, x, y, use_predicted, batch_size).to(run.device)
        x0 = run.batch(x)
        best = x0.clone()
        margin = _margin(run.model, x0, labels, batch_size)
        for _ in range(restarts):  # each run on the inputs not fooled yet, from a new start
            cur = start(x0, eps, generator)
            todo = (margin > 0).nonzero().squeeze(1)
            cur_margin = torch.full_like(margin, torch.inf)
            cur_margin[todo] = _margin(run.model, cur[todo], labels[todo], batch_size)
            for query in range(1, n_queries):
                side = window_side(norm, window_share(p_init, query - 1, n_queries), h, w)
                draws = {
                    "top": torch.randint(0, h - side + 1, (n,), generator=generator),
                    "left": torch.randint(0, w - side + 1, (n,), generator=generator),
                    "signs": torch.randint(0, 2, (n, c), generator=generator) * 2 - 1,
                }
                if norm == "2":
                    draws["top2"] = torch.randint(0, h - side + 1, (n,), generator=generator)
                    draws["left2"] = torch.randint(0, w - side + 1, (n,), generator=generator)
                    draws["flips"] = torch.randint(0, 2, (n,), generator=generator).bool()
                active = todo[cur_margin[todo] > 0]
                if not len(active):
                    break
                picked = {k: v.to(run.device)[active] for k, v in draws.items()}
                trial = move(x0[active], cur[active], eps, side, picked)
                m = _margin(run.model, trial, labels[active], batch_size)
                better = m < cur_margin[active]
                cur[active[better]], cur_margin[active[better]] = trial[better], m[better]
            gain = cur_margin < margin
            best[gain], margin[gain] = cur[gain], cur_margin[gain]
    return best.to(x.device, x.dtype).contiguous()
