"""Surprise adequacy: likelihood-based (LSA) and distance-based (DSA).

Kim, Feldt and Yoo, "Guiding Deep Learning System Testing using Surprise Adequacy", ICSE 2019,
as seed 000 ran it (its ``sa.py``, a copy of the authors' SADL code):

* reference traces: the activation traces of the clean training set, grouped by the model's
  **predicted** class;
* LSA(x) = −log KDE_c(AT(x)), c = x's predicted class, with one Gaussian KDE per class (Scott's
  bandwidth, as ``scipy.stats.gaussian_kde``) after dropping every neuron whose variance is
  below ``var_threshold`` in **any** class;
* DSA(x) = a / b, a = distance from AT(x) to the nearest reference trace x_a of its class,
  b = distance from x_a to the nearest reference trace of any other class.

Speed (``benchmarks/metrics.py``): SADL evaluated scipy's KDE and ``np.linalg.norm`` per input;
here each class is one whitened distance matrix with a log-sum-exp (LSA, float64) and one
chunked float32 distance matrix whose 16 nearest candidates are re-measured exactly in float64
(DSA), on CUDA when present. Memory is bounded by ``chunk_size`` rows per block.

Differences from the seed code: an input that is itself a reference trace (``self_index``)
does not count as its own nearest neighbour in DSA (the seed scored every training input 0,
which made its DSA order "all adversarials first, then ties"), and, given ``self_index``, its
own kernel is left out of its LSA density (leave-one-out; the seed's KDE contained the training
input itself, see :func:`lsa`); a class whose KDE covariance is
singular or ill-conditioned (fewer traces than kept neurons, collinear or dead neurons) gets a
ridge of ``RCOND`` × its largest eigenvalue (logged), where scipy raises or silently returns
values dominated by rounding; classes without enough reference traces are an
error naming them, where the seed crashed with a KeyError.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import Tensor

from robust.errors import ConfigError, DataError
from robust.guidance._arrays import chunk_rows, device_for, labels, traces

log = logging.getLogger(__name__)

CANDIDATES = 16
"""Nearest candidates per query found in float32 and re-measured in float64 (DSA)."""

RCOND = 1e-10
"""LSA: a KDE covariance whose eigenvalues span more than 1/RCOND gets RCOND × its largest
eigenvalue added to the diagonal (scipy raises or returns values dominated by rounding)."""


def _inputs(train_acts, train_pred, acts, pred, dtype):
    ref = traces("train_acts", train_acts, dtype)
    ref_pred = labels("train_pred", train_pred, len(ref))
    x = traces("acts", acts, dtype)
    p = labels("pred", pred, len(x))
    if x.shape[1] != ref.shape[1]:
        raise DataError(
            f"acts must have the reference traces' {ref.shape[1]} features, but have {x.shape[1]}"
        )
    return ref, ref_pred, x, p


def _own(self_index: np.ndarray | Tensor | None, n: int, n_ref: int) -> Tensor:
    """(n,) int64: the reference position of each input's own trace, -1 where it has none."""
    if self_index is None:
        return torch.full((n,), -1, dtype=torch.int64)
    if isinstance(self_index, Tensor):
        self_index = self_index.detach().cpu().numpy()
    own = labels("self_index", np.asarray(self_index) + 1, n) - 1
    if len(own) and own.max() >= n_ref:
        raise DataError(
            f"self_index must index the {n_ref} reference traces (or be -1), but has "
            f"{int(own.max())}"
        )
    return own


def _within(own: Tensor, members: Tensor, n_ref: int) -> Tensor:
    """``own`` as positions within ``members`` (a class's reference positions); -1 where an
    input has no own trace or it lies in another class."""
    position = torch.full((n_ref,), -1, dtype=torch.int64, device=members.device)
    position[members] = torch.arange(len(members), device=members.device)
    return torch.where(own >= 0, position[own.clamp_min(0)], -1)


def _check_classes(metric: str, counts: dict[int, int], wanted: Tensor, least: int) -> None:
    """Every class some input is predicted as needs ``least`` reference traces."""
    short = {
        int(c): counts.get(int(c), 0) for c in wanted.unique() if counts.get(int(c), 0) < least
    }
    if short:
        raise DataError(
            f"{metric} needs at least {least} reference trace(s) predicted as each class the "
            f"inputs are predicted as, but these classes have fewer: {short} (class: traces); "
            "use more reference inputs or leave this metric out"
        )


# ---------------------------------------------------------------------------------------- LSA


def _cholesky(cov: Tensor, label: int) -> Tensor:
    """Lower Cholesky factor of ``cov``; a singular or ill-conditioned one (smallest
    eigenvalue below ``RCOND`` × the largest) first gets the ridge ``RCOND`` × largest."""
    eig = torch.linalg.eigvalsh(cov)
    top = float(eig[-1].clamp_min(torch.finfo(cov.dtype).tiny))
    if eig[0] < RCOND * top:
        log.warning(
            "lsa: the KDE covariance of class %d is singular or ill-conditioned (smallest "
            "eigenvalue %.2g, largest %.2g); added %.0e × the largest to its diagonal",
            label,
            float(eig[0]),
            top,
            RCOND,
        )
        cov = cov + RCOND * top * torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
    factor, info = torch.linalg.cholesky_ex(cov)
    if info != 0:
        raise DataError(f"lsa: the KDE covariance of class {label} is not positive definite")
    return factor


def lsa(
    train_acts: np.ndarray | Tensor,
    train_pred: np.ndarray | Tensor,
    acts: np.ndarray | Tensor,
    pred: np.ndarray | Tensor,
    var_threshold: float = 1e-5,
    *,
    self_index: np.ndarray | Tensor | None = None,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Likelihood-based surprise adequacy: −log of the predicted class's KDE at each trace.

    With ``self_index``, an input that is itself reference trace j is scored by the
    leave-one-out density of its class: the KDE's kernel sum without the kernel at j, over
    n − 1 (its class has n traces). The bandwidth (the covariance and Scott's factor) stays
    the full class's, so every input of a class is scored under one kernel and the scores stay
    comparable; the self term is masked in the log-sum-exp rather than subtracted from the
    full sum, which would cancel catastrophically where it dominates. Why: the self kernel
    adds (2π)^(−d/2)·|H|^(−1/2)/n to a training input's density alone, which in tens of
    dimensions with Scott's narrow bandwidth often outweighs every other kernel, so training
    inputs come out unsurprising because they are training inputs, and an order puts the
    adversarial inputs first for that reason only (DSA's degenerate zeros in milder form).
    Excluding it scores clean and adversarial inputs on equal footing, as DSA here does.
    Seed 000's ``fetch_lsa`` kept the self kernel (``self_index`` None reproduces it).

    Args:
        train_acts: (M, features) reference traces (more axes are flattened).
        train_pred: (M,) the model's predicted classes of the reference inputs.
        acts: (N, features) traces to score.
        pred: (N,) their predicted classes.
        var_threshold: neurons whose (population) variance is below this in any reference
            class are dropped from every KDE, as the seed (≥ 0).
        self_index: (N,) for an input that is itself reference trace j, j (its kernel is left
            out, see above); -1 for the others. None: no input is a reference trace (the
            seed's LSA). The variance filter and the bandwidth always use every trace.
        chunk_size: query rows per distance block; None bounds a block to about 64 MiB.
        device: where to compute; None: CUDA when present.

    Returns:
        (N,) float64. Without ``self_index``, equals
        ``-scipy.stats.gaussian_kde(refs_c.T).logpdf(x_c.T)`` per class.

    Raises:
        DataError: malformed arrays, a predicted class with fewer than 2 reference traces, a
            ``self_index`` outside the reference set, or no neuron left after the variance
            filter.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.normal(size=(200, 3))
        >>> lsa(ref, np.zeros(200, dtype=int), ref[:2], np.zeros(2, dtype=int)).shape
        (2,)
    """
    ok = isinstance(var_threshold, (int, float)) and not isinstance(var_threshold, bool)
    if not ok or not var_threshold >= 0:
        raise ConfigError(f"var_threshold must be a number ≥ 0, but got {var_threshold=}")
    ref, ref_pred, x, p = _inputs(train_acts, train_pred, acts, pred, torch.float64)
    chunk_rows(1, chunk_size)  # checks it
    own = _own(self_index, len(x), len(ref))
    counts = {int(c): int(n) for c, n in zip(*ref_pred.unique(return_counts=True), strict=True)}
    _check_classes("lsa", counts, p, 2)  # 2: a covariance, and one kernel left out of n
    # the seed's filter: a neuron with low variance in any class is dropped everywhere
    low = torch.zeros(ref.shape[1], dtype=torch.bool)
    for c in counts:
        low |= ref[ref_pred == c].var(0, correction=0) < var_threshold
    if low.all():
        raise DataError(
            f"lsa: every neuron has variance below var_threshold={var_threshold} in some "
            "class; lower var_threshold or use another layer"
        )
    dev = device_for(device)
    ref, x = ref[:, ~low], x[:, ~low]
    out = torch.empty(len(x), dtype=torch.float64)
    for c in p.unique().tolist():
        members = (ref_pred == c).nonzero().squeeze(1)
        exclude = _within(own[p == c], members, len(ref))
        out[p == c] = _class_lsa(
            ref[members].to(dev), x[p == c].to(dev), c, chunk_size, exclude.to(dev)
        )
    return out.numpy()


def _class_lsa(
    refs: Tensor, queries: Tensor, label: int, chunk_size: int | None, exclude: Tensor
) -> Tensor:
    """−log of one class's Gaussian KDE (Scott's factor) at each query, in float64;
    ``exclude[i]`` ≥ 0 leaves that reference's kernel out of query i's density."""
    n, d = refs.shape
    factor = n ** (-1.0 / (d + 4))
    cov = torch.atleast_2d(torch.cov(refs.T)) * factor**2  # scipy: np.cov (ddof 1) · factor²
    chol = _cholesky(cov, label)
    mean = refs.mean(0)
    # whitened (Mahalanobis) coordinates: |L⁻¹(x − r)|² is the kernel's exponent ×2
    white_refs = torch.linalg.solve_triangular(chol, (refs - mean).T, upper=False).T
    ref_sq = (white_refs * white_refs).sum(1)
    log_norm = -0.5 * d * math.log(2 * math.pi) - chol.diagonal().log().sum()
    # the log of 1/n, or 1/(n − 1) for a query whose own kernel is left out
    log_count = torch.full(exclude.shape, -math.log(n), dtype=refs.dtype, device=refs.device)
    log_count[exclude >= 0] = -math.log(n - 1)
    out = []
    rows = chunk_rows(n, chunk_size)
    for i, q in enumerate(queries.split(rows)):
        white = torch.linalg.solve_triangular(chol, (q - mean).T, upper=False).T
        sq = torch.addmm(ref_sq[None], white, white_refs.T, alpha=-2)
        sq.add_((white * white).sum(1, keepdim=True)).clamp_min_(0).mul_(-0.5)
        own = exclude[i * rows : (i + 1) * rows]
        hit = (own >= 0).nonzero().squeeze(1)
        sq[hit, own[hit]] = -torch.inf  # its own kernel: out of the sum
        density = torch.logsumexp(sq, dim=1) + log_norm + log_count[i * rows : (i + 1) * rows]
        out.append(-density)
    return torch.cat(out).cpu() if out else torch.empty(0, dtype=torch.float64)


# ---------------------------------------------------------------------------------------- DSA


def _nearest(
    queries: Tensor,
    queries64: Tensor,
    refs: Tensor,
    refs64: Tensor,
    chunk_size: int | None,
    exclude: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Exact nearest reference of each query: (float64 distance, position in ``refs``).

    ``queries``/``refs`` are centred float32 copies used to find the ``CANDIDATES`` nearest
    by |r|² − 2 q·r (|q|² is the same along a row); those are re-measured as float64
    differences, so the fast pass's rounding (about 1e-7 of |q|² + |r|²) changes the answer
    only if more than ``CANDIDATES`` references lie that close to the nearest. ``exclude[i]``
    ≥ 0 removes that reference from query i's candidates (its own trace). Ties go to the
    lower position.
    """
    k = min(CANDIDATES, len(refs))
    ref_sq = (refs * refs).sum(1)
    dists, where = [], []
    rows = chunk_rows(len(refs), chunk_size)
    for i in range(0, len(queries), rows):
        q = queries[i : i + rows]
        sq = torch.addmm(ref_sq[None], q, refs.T, alpha=-2)  # |q|² shifts a row: not needed
        if exclude is not None:
            own = exclude[i : i + rows]
            hit = (own >= 0).nonzero().squeeze(1)
            sq[hit, own[hit]] = torch.inf
        cand = sq.topk(k, dim=1, largest=False).indices.sort(dim=1).values  # by position
        exact = (queries64[i : i + rows, None, :] - refs64[cand]).norm(dim=2)
        if exclude is not None:
            exact[cand == exclude[i : i + rows, None]] = torch.inf
        best, pos = exact.min(dim=1)  # first minimum: the lower position
        dists.append(best)
        where.append(cand.gather(1, pos[:, None]).squeeze(1))
    if not dists:
        return torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.int64)
    return torch.cat(dists), torch.cat(where)


def dsa(
    train_acts: np.ndarray | Tensor,
    train_pred: np.ndarray | Tensor,
    acts: np.ndarray | Tensor,
    pred: np.ndarray | Tensor,
    *,
    self_index: np.ndarray | Tensor | None = None,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Distance-based surprise adequacy a / b (exact nearest neighbours, Euclidean).

    Args:
        train_acts: (M, features) reference traces (more axes are flattened).
        train_pred: (M,) the model's predicted classes of the reference inputs.
        acts: (N, features) traces to score.
        pred: (N,) their predicted classes.
        self_index: (N,) for an input that is itself reference trace j, j (that trace is not
            its neighbour); -1 for the others. None: no input is a reference trace.
        chunk_size: query rows per distance block; None bounds a block to about 64 MiB.
        device: where to compute; None: CUDA when present.

    Returns:
        (N,) float64 ≥ 0; b = 0 gives inf (0 when a = 0 too).

    Raises:
        DataError: malformed arrays, a predicted class without a reference trace other than
            the input itself, or a reference set with only one class.

    Example:
        >>> ref = np.array([[0.0], [1.0], [4.0]])
        >>> dsa(ref, np.array([0, 0, 1]), np.array([[0.5]]), np.array([0])).tolist()
        [0.16666666666666666]
    """
    ref64, ref_pred, x64, p = _inputs(train_acts, train_pred, acts, pred, torch.float64)
    chunk_rows(1, chunk_size)  # checks it
    own = _own(self_index, len(x64), len(ref64))
    counts = {int(c): int(n) for c, n in zip(*ref_pred.unique(return_counts=True), strict=True)}
    if len(counts) < 2:
        raise DataError(
            f"dsa needs reference traces of at least 2 predicted classes, but got {len(counts)}"
        )
    needed = dict(counts)
    for c in p.unique().tolist():  # an input's own trace does not count for its class
        mine = own[(p == c) & (own >= 0)]
        if len(mine) and (ref_pred[mine] == c).any():
            needed[c] = counts.get(c, 0) - 1
    _check_classes("dsa", {c: needed.get(c, 0) for c in counts}, p, 1)

    dev = device_for(device)
    centre = ref64.mean(0)
    ref64, x64 = (ref64 - centre).to(dev), (x64 - centre).to(dev)
    ref32, x32 = ref64.float(), x64.float()
    ref_pred, p, own = ref_pred.to(dev), p.to(dev), own.to(dev)

    a = torch.empty(len(x64), dtype=torch.float64, device=dev)
    nearest = torch.empty(len(x64), dtype=torch.int64, device=dev)  # x_a, a reference index
    for c in p.unique().tolist():
        rows = (p == c).nonzero().squeeze(1)
        members = (ref_pred == c).nonzero().squeeze(1)
        exclude = _within(own[rows], members, len(ref64))
        a[rows], pos = _nearest(
            x32[rows], x64[rows], ref32[members], ref64[members], chunk_size, exclude
        )
        nearest[rows] = members[pos]

    # b depends only on x_a: measure it once per distinct reference trace that is someone's x_a
    chosen = nearest.unique()
    b_of = torch.empty(len(ref64), dtype=torch.float64, device=dev)
    for c in ref_pred[chosen].unique().tolist():
        mine = chosen[ref_pred[chosen] == c]
        others = (ref_pred != c).nonzero().squeeze(1)
        b_of[mine], _ = _nearest(
            ref32[mine], ref64[mine], ref32[others], ref64[others], chunk_size
        )
    b = b_of[nearest] if len(nearest) else a
    score = torch.where(b > 0, a / b.where(b > 0, torch.ones_like(b)), torch.inf)
    score = torch.where((a == 0) & (b == 0), torch.zeros_like(score), score)
    return score.cpu().numpy()
