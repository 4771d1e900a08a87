"""What the guidance metrics cost against seed 000's per-input code, on an MNIST-sized pool.

Problem (seed 000's MNIST, synthetic): ``--n-ref`` reference traces (default 49,000, the clean
training set) of ``--dim`` neurons (128, the last hidden layer) in ``--classes`` classes (10),
and a pool of ``--n-pool`` traces (56,000) to score: the reference traces themselves (clean
training inputs, as the seed's pool) followed by ``n-pool − n-ref`` adversarial traces.
Offline there are no real traces; the generator (seeded, ``--seed``) makes them clustered like
the ReLU traces of a trained net:

* reference trace = ReLU(centre_c + s_c · g_j · z), z ~ N(0, I), with one centre per class
  (N(0.5, 1) per neuron), a class scale s_c ~ U(0.4, 1.2), a neuron scale g_j ~ U(0.5, 1.5), and
  uneven class sizes (Dirichlet(50) proportions); 10 % of the neurons are dead (centre −10) in
  one to three classes and a few more are silent in some class by chance, so the KDE's
  variance filter (< 1e-5 in any class) drops about a fifth of them, as on seed 000's MNIST
  (23 of 128; here 25 at seed 0);
* adversarial trace = ReLU(t · centre_a + (1 − t) · centre_b + noise of class a), t ~ U(0.55,
  0.9), b ≠ a: between two clusters, predicted as a;
* probabilities (DeepGini, entropy) = softmax of a seeded random linear map of the traces
  (logits with a standard deviation of about 2.5).

Candidates, in one process, on the same arrays (float64, values representable in float32 as
real traces are):

* ours: ``robust.guidance`` on all n-pool traces: ``neuron_coverage``, ``deepgini``,
  ``softmax_entropy``; ``lsa`` and ``dsa`` with the reference traces as reference (``dsa``
  with ``self_index``: a clean trace is not its own neighbour); ``order`` of one score vector;
* seed 000's per-input code (``baseline``), as it ran it:
  - NC: DeepXplore's ``NCoverage`` step, one input at a time: min-max scale the input's layer
    output with numpy, then a Python loop over neurons testing ``np.mean(scaled[..., j]) >
    0.2``. Only this part is timed; the seed also ran a whole Keras forward pass per input
    (``NC(tf.expand_dims(x, 0))``), so the ratio is a lower bound;
  - DeepGini and entropy: a per-input numpy loop (``1 − Σp²``, ``−Σ p log₂ p``);
  - LSA: SADL's ``fetch_lsa``: its variance filter (a Python loop over classes and neurons),
    one ``scipy.stats.gaussian_kde`` per class, then ``-kde.logpdf(at)`` input by input;
  - LSA, plain scipy: the same filter and KDEs, then one ``kde.logpdf`` per class over all
    that class's inputs at once (the straightforward vectorised scipy);
  - DSA: SADL's ``fetch_dsa`` input by input: ``np.linalg.norm`` against the class's
    reference traces, then against ``train_ats[list(set(all_idx) - set(class))]`` (the set
    difference rebuilt per input, as SADL does). One addition so it computes what ours does:
    an input's own trace is skipped (its distance set to inf), where SADL scored every
    training input 0;
  - order: the seed's ``np.flip(np.argsort(values))``.

Before timing, a slice (``CHECK_N`` clean and ``CHECK_N`` adversarial traces) is scored by ours
and by every baseline, and the largest relative difference is printed; the run aborts if any
exceeds ``RTOL`` (1e-6). ``order`` is checked to sort the scores the same way (ties aside).

Method: each candidate first runs on the first inputs of a seeded random permutation of the
pool: ours on 32 (a warm-up), a baseline on 32, again on 32 and on 128 (a pilot giving its cost
per call and per input). A baseline whose one-off setup (filter and KDE fits, the class index)
plus pilot predicts more than ``--budget`` seconds for all n-pool inputs is timed on the first
m inputs of the permutation (about a quarter of the budget) and reported as setup + loop × n/m,
labelled "extrapolated from n=m" (at the defaults only SADL's per-input LSA and DSA are,
whose loop cost is proportional to the inputs). Ours always runs on all inputs. The candidates
of a case run round-robin ``--repeats`` times and the median is reported (no CUDA sync is
needed: every metric returns a numpy array). Ratios are baseline time over ours: 12× slower
means the baseline takes 12 times as long.

Expected floors (the acceptance block says PASS or FAIL), on 2 CPU cores: NC + DeepGini +
entropy together under 1 s, DSA under 15 s and LSA under 15 s for the 56,000 traces. On this
machine the plain scipy LSA takes about 40 s and SADL's per-input LSA and DSA far longer (the
seed logged 20 and 47 minutes for MNIST, traces included).

Run: ``python benchmarks/metrics.py [--n-pool 56000] [--n-ref 49000] [--dim 128]
[--classes 10] [--repeats 3] [--budget 120] [--device auto] [--threads 0] [--quick]``;
``--quick`` is a smoke run (1,200 traces, 1,000 reference, 32 neurons, one repeat, budget 1 s):
a few seconds. The full run takes about 6 minutes on 2 CPU cores; run it on an otherwise idle
machine.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import gaussian_kde

CHECK_N = 50  # clean and adversarial traces each in the correctness check
RTOL = 1e-6
PILOT = 32  # inputs of a subsampled baseline's pilot run
VAR_THRESHOLD = 1e-5  # SADL's and seed 000's
THRESHOLD = 0.2  # NC's
FLOOR_FAST, FLOOR_DSA, FLOOR_LSA = 1.0, 15.0, 15.0  # seconds, ours, all n-pool traces


# ------------------------------------------------------------------------------------- data


@dataclass
class Data:
    ref: np.ndarray  # (n_ref, dim) reference traces
    ref_pred: np.ndarray  # (n_ref,) their predicted classes
    pool: np.ndarray  # (n_pool, dim): ref, then the adversarial traces
    pred: np.ndarray  # (n_pool,)
    self_index: np.ndarray  # (n_pool,): i for clean trace i, -1 for adversarial ones
    probs: np.ndarray  # (n_pool, classes)


def make_data(n_pool: int, n_ref: int, dim: int, classes: int, seed: int) -> Data:
    """Seeded clustered ReLU traces; see the module docstring."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.5, 1.0, (classes, dim))
    class_scale = rng.uniform(0.4, 1.2, classes)
    neuron_scale = rng.uniform(0.5, 1.5, dim)
    for j in rng.choice(dim, round(0.1 * dim), replace=False):  # dead in 1-3 classes
        centres[rng.choice(classes, rng.integers(1, 4), replace=False), j] = -10.0
    share = rng.dirichlet(np.full(classes, 50.0))

    def noise(c: np.ndarray) -> np.ndarray:
        return rng.standard_normal((len(c), dim)) * class_scale[c, None] * neuron_scale

    ref_pred = rng.choice(classes, n_ref, p=share)
    ref = np.maximum(centres[ref_pred] + noise(ref_pred), 0)
    n_adv = n_pool - n_ref
    a = rng.choice(classes, n_adv, p=share)
    b = (a + rng.integers(1, classes, n_adv)) % classes
    t = rng.uniform(0.55, 0.9, (n_adv, 1))
    adv = np.maximum(t * centres[a] + (1 - t) * centres[b] + noise(a), 0)
    # float32 values (as real traces), kept in float64 so every candidate reads the same numbers
    pool = np.concatenate([ref, adv]).astype(np.float32).astype(np.float64)
    ref = pool[:n_ref]
    logits = (pool - pool.mean(0)) @ rng.normal(0, 1, (dim, classes))
    logits *= 2.5 / logits.std()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    self_index = np.concatenate([np.arange(n_ref), np.full(n_adv, -1)])
    return Data(ref, ref_pred, pool, np.concatenate([ref_pred, a]), self_index, probs)


# --------------------------------------------------------------- seed 000's per-input code


def nc_per_input(acts: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """DeepXplore's NCoverage step per input: min-max scale, then a loop over neurons."""
    out = np.empty(len(acts))
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant output: 0/0, never covered
        for i in range(len(acts)):
            layer = acts[i]
            scaled = (layer - layer.min()) / (layer.max() - layer.min())
            covered = 0
            for j in range(scaled.shape[-1]):
                if np.mean(scaled[..., j]) > threshold:
                    covered += 1
            out[i] = covered / scaled.shape[-1]
    return out


def deepgini_per_input(probs: np.ndarray) -> np.ndarray:
    return np.array([1.0 - np.sum(p * p) for p in probs])


def entropy_per_input(probs: np.ndarray) -> np.ndarray:
    return np.array([-np.sum(p * np.log2(p)) for p in probs])  # softmax: no zeros


def sadl_kdes(train_ats: np.ndarray, train_pred: np.ndarray, classes: int):
    """SADL's ``_get_kdes``: the variance filter over classes, one gaussian_kde per class."""
    class_matrix: dict[int, list[int]] = {}
    for i, label in enumerate(train_pred.tolist()):
        class_matrix.setdefault(label, []).append(i)
    removed_cols: list[int] = []
    for label in range(classes):
        col_vectors = np.transpose(train_ats[class_matrix[label]])
        for i in range(col_vectors.shape[0]):
            if np.var(col_vectors[i]) < VAR_THRESHOLD and i not in removed_cols:
                removed_cols.append(i)
    kdes = {}
    for label in range(classes):
        refined_ats = np.delete(np.transpose(train_ats[class_matrix[label]]), removed_cols, 0)
        kdes[label] = gaussian_kde(refined_ats)
    return kdes, removed_cols


def sadl_lsa(state, acts: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """SADL's ``fetch_lsa`` loop: ``-kde.logpdf`` of one input at a time."""
    kdes, removed_cols = state
    lsa = []
    for i, at in enumerate(acts):
        refined_at = np.delete(at, removed_cols, axis=0)
        lsa.append((-kdes[pred[i]].logpdf(np.transpose(refined_at))).item())
    return np.array(lsa)


def scipy_lsa(state, acts: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The same KDEs, each evaluated once on all the inputs of its class."""
    kdes, removed_cols = state
    x = np.delete(acts, removed_cols, axis=1)
    out = np.empty(len(acts))
    for label in np.unique(pred).tolist():
        rows = pred == label
        out[rows] = -kdes[label].logpdf(x[rows].T)
    return out


def sadl_dsa_index(train_ats: np.ndarray, train_pred: np.ndarray):
    """SADL's ``fetch_dsa`` set-up (class index), plus each trace's position in its class."""
    class_matrix: dict[int, list[int]] = {}
    all_idx = []
    for i, label in enumerate(train_pred.tolist()):
        if label not in class_matrix:
            class_matrix[label] = []
        class_matrix[label].append(i)
        all_idx.append(i)
    position = np.empty(len(train_pred), dtype=np.int64)  # for skipping an input's own trace
    for members in class_matrix.values():
        position[members] = np.arange(len(members))
    return train_ats, train_pred, class_matrix, all_idx, position


def _find_closest_at(at: np.ndarray, train_ats: np.ndarray):
    dist = np.linalg.norm(at - train_ats, axis=1)
    return min(dist), train_ats[np.argmin(dist)]


def sadl_dsa(state, acts: np.ndarray, pred: np.ndarray, own: np.ndarray) -> np.ndarray:
    """SADL's ``fetch_dsa`` loop, skipping an input's own reference trace."""
    train_ats, train_pred, class_matrix, all_idx, position = state
    dsa = []
    for i, at in enumerate(acts):
        label = pred[i]
        same = train_ats[class_matrix[label]]
        dist = np.linalg.norm(at - same, axis=1)
        if own[i] >= 0 and train_pred[own[i]] == label:  # the one addition to SADL
            dist[position[own[i]]] = np.inf
        a_dist, a_dot = min(dist), same[np.argmin(dist)]
        b_dist, _ = _find_closest_at(
            a_dot, train_ats[list(set(all_idx) - set(class_matrix[label]))]
        )
        dsa.append(a_dist / b_dist)
    return np.array(dsa)


# ---------------------------------------------------------------------------------- timing


@dataclass
class Candidate:
    label: str
    run: Callable[[object, np.ndarray | None], object]  # (setup's state, pool rows or None)
    setup: Callable[[], object] | None = None  # one-off cost, counted once
    subsample: bool = False  # may be timed on a sample and extrapolated


def _clock(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _once(c: Candidate, rows: np.ndarray | None, n: int) -> float:
    """Seconds for all n inputs: setup + run on ``rows`` (all when None) scaled to n."""
    t_setup, state = _clock(c.setup) if c.setup else (0.0, None)
    t_run, _ = _clock(lambda: c.run(state, rows))
    return t_setup + t_run * (n / len(rows) if rows is not None else 1.0)


def _pilot(c: Candidate, n: int, sample: np.ndarray) -> tuple[float, float, float]:
    """(setup, fixed, per-input) seconds of a baseline, from runs on PILOT and 4·PILOT inputs.

    Two sizes, as a batched baseline has a cost per call besides its cost per input (plain
    scipy whitens each class's reference traces once per ``logpdf`` call): one small pilot
    alone would charge that to the inputs and overestimate the full run.
    """
    t_setup, state = _clock(c.setup) if c.setup else (0.0, None)
    p1, p2 = min(PILOT, n), min(4 * PILOT, n)
    t1, _ = _clock(lambda: c.run(state, sample[:p1]))  # also the warm-up
    t1, _ = _clock(lambda: c.run(state, sample[:p1]))
    t2, _ = _clock(lambda: c.run(state, sample[:p2]))
    per_input = (t2 - t1) / (p2 - p1) if p2 > p1 and t2 > t1 else t2 / p2
    return t_setup, max(0.0, t1 - per_input * p1), per_input


def _measure(cands: list[Candidate], n: int, sample: np.ndarray, args) -> dict:
    """Median seconds for all n inputs and the number of inputs timed, per candidate."""
    rows: dict[str, np.ndarray | None] = {}
    for c in cands:
        rows[c.label] = None
        if not c.subsample:
            c.run(c.setup() if c.setup else None, sample[:PILOT])  # warm-up
            continue
        t_setup, fixed, per_input = _pilot(c, n, sample)
        if t_setup + fixed + per_input * n > args.budget:
            m = int(max(0.0, args.budget / 4 - t_setup - fixed) / max(per_input, 1e-12))
            m = min(n, max(4 * PILOT, m))
            rows[c.label] = None if m >= n else np.sort(sample[:m])
    times: dict[str, list[float]] = {c.label: [] for c in cands}
    for _ in range(args.repeats):  # round-robin, so a drift in machine speed hits all alike
        for c in cands:
            times[c.label].append(_once(c, rows[c.label], n))
    return {
        k: (statistics.median(v), n if rows[k] is None else len(rows[k])) for k, v in times.items()
    }


def _ratio(t: float, t0: float) -> str:
    """How a baseline's time t compares with ours, t0."""
    return f"{t / t0:.1f}× slower" if t >= t0 else f"{t0 / t:.1f}× faster than ours"


def _line(case: str, n: int, res: dict, note: str = "") -> str:
    (ours_label, (t0, _)), *rest = res.items()
    parts = [f"{ours_label} {t0:.3g} s"]
    for label, (t, m) in rest:
        extra = f", extrapolated from n={m:,}" if m < n else ""
        parts.append(f"{label} {t:.3g} s ({_ratio(t, t0)}{extra})")
    return f"{case} n={n:,}: " + " | ".join(parts) + note


# ---------------------------------------------------------------------------------- checks


def _max_rel(got: np.ndarray, want: np.ndarray) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    diff = np.abs(got - want)
    scale = np.abs(want)
    return float(np.max(np.where(diff == 0, 0.0, diff / np.where(scale > 0, scale, 1e-300))))


def _check(d: Data, classes: int, device) -> None:
    """Ours against every baseline on a slice of clean and adversarial traces; abort on a miss."""
    from robust.guidance import deepgini, dsa, lsa, neuron_coverage, order, softmax_entropy

    n_ref = len(d.ref)
    rng = np.random.default_rng(1)
    clean = np.sort(rng.choice(n_ref, min(CHECK_N, n_ref), replace=False))
    adv = np.arange(n_ref, min(len(d.pool), n_ref + CHECK_N))
    rows = np.concatenate([clean, adv])
    x, p, own, probs = d.pool[rows], d.pred[rows], d.self_index[rows], d.probs[rows]
    kdes = sadl_kdes(d.ref, d.ref_pred, classes)
    ours_lsa = lsa(d.ref, d.ref_pred, x, p, VAR_THRESHOLD, device=device)
    ours_dg = deepgini(probs)
    pairs = {
        "nc": (neuron_coverage(x, THRESHOLD), nc_per_input(x)),
        "deepgini": (ours_dg, deepgini_per_input(probs)),
        "entropy": (softmax_entropy(probs), entropy_per_input(probs)),
        "lsa/SADL": (ours_lsa, sadl_lsa(kdes, x, p)),
        "lsa/scipy": (ours_lsa, scipy_lsa(kdes, x, p)),
        "dsa/SADL": (
            dsa(d.ref, d.ref_pred, x, p, self_index=own, device=device),
            sadl_dsa(sadl_dsa_index(d.ref, d.ref_pred), x, p, own),
        ),
        "order": (ours_dg[order(ours_dg)], ours_dg[np.flip(np.argsort(ours_dg))]),
    }
    rel = {k: _max_rel(a, b) for k, (a, b) in pairs.items()}
    print(
        f"check n={len(rows)} ({len(clean)} clean, {len(adv)} adversarial), max relative "
        "difference ours vs baseline: " + ", ".join(f"{k} {v:.1e}" for k, v in rel.items())
    )
    bad = {k: v for k, v in rel.items() if not v <= RTOL}
    if bad:
        raise SystemExit(f"ours and the baselines disagree beyond rtol {RTOL}: {bad}")


# ------------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-pool", type=int, default=56_000, help="traces to score")
    ap.add_argument("--n-ref", type=int, default=49_000, help="reference (clean) traces")
    ap.add_argument("--dim", type=int, default=128, help="neurons per trace")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic traces")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per candidate")
    ap.add_argument("--budget", type=float, default=120.0, help="max s per baseline repeat")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 1,200 traces of 32 neurons, one repeat"
    )
    args = ap.parse_args()
    if args.quick:
        args.n_pool, args.n_ref, args.dim = 1_200, 1_000, 32
        args.repeats, args.budget = 1, 1.0
    if not 2 <= args.classes <= args.n_ref <= args.n_pool or args.dim < 1 or args.repeats < 1:
        ap.error("need 2 ≤ --classes ≤ --n-ref ≤ --n-pool, --dim ≥ 1 and --repeats ≥ 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    from robust.guidance import deepgini, dsa, lsa, neuron_coverage, order, softmax_entropy
    from robust.utils import resolve_device

    device = resolve_device(args.device)
    d = make_data(args.n_pool, args.n_ref, args.dim, args.classes, args.seed)
    n = args.n_pool
    kept = args.dim - len(_removed(d))
    print(
        f"device {device}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"{n:,} traces ({args.n_ref:,} clean = the reference set, {n - args.n_ref:,} "
        f"adversarial), {args.dim} neurons ({kept} kept by the LSA variance filter), "
        f"{args.classes} classes; median of {args.repeats}; s for all {n:,} traces"
    )
    _check(d, args.classes, device)

    sample = np.random.default_rng(2).permutation(n)  # a baseline's sample: its first m
    scores = deepgini(d.probs)  # the vector ordered

    def rows_of(a: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        return a if rows is None else a[rows]

    def ours(fn):
        return Candidate("ours", lambda _s, rows: fn(rows))

    cases = {
        "nc": [
            ours(lambda r: neuron_coverage(rows_of(d.pool, r), THRESHOLD)),
            Candidate(
                "seed per-input scaling + neuron loop (no forward: lower bound)",
                lambda _s, r: nc_per_input(rows_of(d.pool, r)),
                subsample=True,
            ),
        ],
        "deepgini": [
            ours(lambda r: deepgini(rows_of(d.probs, r))),
            Candidate(
                "per-input numpy loop",
                lambda _s, r: deepgini_per_input(rows_of(d.probs, r)),
                subsample=True,
            ),
        ],
        "entropy": [
            ours(lambda r: softmax_entropy(rows_of(d.probs, r))),
            Candidate(
                "per-input numpy loop",
                lambda _s, r: entropy_per_input(rows_of(d.probs, r)),
                subsample=True,
            ),
        ],
        "nc+deepgini+entropy": [
            ours(
                lambda r: (
                    neuron_coverage(rows_of(d.pool, r), THRESHOLD),
                    deepgini(rows_of(d.probs, r)),
                    softmax_entropy(rows_of(d.probs, r)),
                )
            ),
        ],
        "lsa": [
            ours(
                lambda r: lsa(
                    d.ref,
                    d.ref_pred,
                    rows_of(d.pool, r),
                    rows_of(d.pred, r),
                    VAR_THRESHOLD,
                    device=device,
                )
            ),
            Candidate(
                "SADL per-class scipy KDE, per input",
                lambda s, r: sadl_lsa(s, rows_of(d.pool, r), rows_of(d.pred, r)),
                setup=lambda: sadl_kdes(d.ref, d.ref_pred, args.classes),
                subsample=True,
            ),
            Candidate(
                "plain scipy gaussian_kde, per class",
                lambda s, r: scipy_lsa(s, rows_of(d.pool, r), rows_of(d.pred, r)),
                setup=lambda: sadl_kdes(d.ref, d.ref_pred, args.classes),
                subsample=True,
            ),
        ],
        "dsa": [
            ours(
                lambda r: dsa(
                    d.ref,
                    d.ref_pred,
                    rows_of(d.pool, r),
                    rows_of(d.pred, r),
                    self_index=rows_of(d.self_index, r),
                    device=device,
                )
            ),
            Candidate(
                "SADL fetch_dsa per input",
                lambda s, r: sadl_dsa(
                    s, rows_of(d.pool, r), rows_of(d.pred, r), rows_of(d.self_index, r)
                ),
                setup=lambda: sadl_dsa_index(d.ref, d.ref_pred),
                subsample=True,
            ),
        ],
        "order": [
            ours(lambda r: order(rows_of(scores, r), seed=0)),
            Candidate(
                "seed np.flip(np.argsort)",
                lambda _s, r: np.flip(np.argsort(rows_of(scores, r))),
                subsample=True,
            ),
        ],
    }
    results = {}
    for case, cands in cases.items():
        res = _measure(cands, n, sample, args)
        results[case] = res
        note = ""
        if case == "nc+deepgini+entropy":
            base = sum(results[k][list(results[k])[1]][0] for k in ("nc", "deepgini", "entropy"))
            t0 = res["ours"][0]
            note = f" | the three baselines above, summed, {base:.3g} s ({_ratio(base, t0)})"
        print(_line(case, n, res, note), flush=True)

    verdicts = [
        ("NC + DeepGini + entropy", results["nc+deepgini+entropy"]["ours"][0], FLOOR_FAST),
        ("DSA", results["dsa"]["ours"][0], FLOOR_DSA),
        ("LSA", results["lsa"]["ours"][0], FLOOR_LSA),
    ]
    print("acceptance:")
    for name, t, floor in verdicts:
        print(f"  {name}: {t:.3g} s (under {floor:g} s) {'PASS' if t < floor else 'FAIL'}")


def _removed(d: Data) -> list[int]:
    """Neurons the LSA variance filter drops (variance below the threshold in some class)."""
    low = np.zeros(d.ref.shape[1], dtype=bool)
    for c in np.unique(d.ref_pred):
        low |= d.ref[d.ref_pred == c].var(0) < VAR_THRESHOLD
    return np.flatnonzero(low).tolist()


if __name__ == "__main__":
    main()
