"""robust/guidance/surprise.py: LSA against scipy's gaussian_kde and dnn-tip, DSA against a
brute-force numpy loop (SADL's algorithm) and dnn-tip, on clustered and real digits traces."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from dnn_tip import surprise
from scipy.stats import gaussian_kde

from robust.errors import ConfigError, DataError
from robust.guidance import dsa, lsa
from tests.guidance.conftest import clustered


def _kept(ref, ref_pred, var_threshold=1e-5):
    """SADL's filter: neurons whose variance is below the threshold in any class go."""
    removed = set()
    for c in np.unique(ref_pred):
        removed |= set(np.flatnonzero(np.var(ref[ref_pred == c], axis=0) < var_threshold))
    return [j for j in range(ref.shape[1]) if j not in removed]


def _scipy_lsa(ref, ref_pred, x, pred, var_threshold=1e-5):
    """SADL's fetch_lsa: union variance filter, one scipy KDE per predicted class; a class
    whose covariance is singular or ill-conditioned (where scipy raises or returns rounding
    noise) gets the documented ridge, computed by :func:`_ridge_lsa`."""
    from robust.guidance.surprise import RCOND

    keep = _kept(ref, ref_pred, var_threshold)
    out = np.empty(len(x))
    for c in np.unique(pred):
        r, q = ref[ref_pred == c][:, keep], x[pred == c][:, keep]
        lam = np.linalg.eigvalsh(np.cov(r.T))
        if lam[0] < RCOND * lam[-1]:
            out[pred == c] = _ridge_lsa(r, q)
        else:
            out[pred == c] = -gaussian_kde(r.T).logpdf(q.T)
    return out, keep


def _ridge_lsa(r, q):
    """One class's LSA with RCOND × λmax added to the KDE covariance, by eigendecomposition."""
    from scipy.special import logsumexp

    from robust.guidance.surprise import RCOND

    n, d = r.shape
    cov = np.cov(r.T) * n ** (-2 / (d + 4))
    cov += RCOND * np.linalg.eigvalsh(cov)[-1] * np.eye(d)
    lam, vec = np.linalg.eigh(cov)
    z = ((q[:, None, :] - r[None]) @ vec) ** 2 / lam  # (queries, refs, d)
    logs = -0.5 * (z.sum(2) + d * np.log(2 * np.pi) + np.log(lam).sum())
    return -(logsumexp(logs, axis=1) - np.log(n))


def _brute_dsa(ref, ref_pred, x, pred, self_index=None):
    """SADL's fetch_dsa, one input at a time with np.linalg.norm."""
    out = np.empty(len(x))
    for i in range(len(x)):
        same = np.flatnonzero(ref_pred == pred[i])
        if self_index is not None and self_index[i] >= 0:
            same = same[same != self_index[i]]
        d = np.linalg.norm(ref[same] - x[i], axis=1)
        x_a = ref[same[np.argmin(d)]]
        b = np.linalg.norm(ref[ref_pred != pred[i]] - x_a, axis=1).min()
        out[i] = d.min() / b
    return out


@pytest.fixture(scope="module")
def synth():
    ref, ref_pred = clustered(1500, 12, 4, seed=0)
    x, pred = clustered(300, 12, 4, seed=1)
    return ref, ref_pred, x, pred


# ---------------------------------------------------------------------------------------- LSA


def test_lsa_equals_scipy_on_clustered_traces(synth):
    ref, ref_pred, x, pred = synth
    want, _ = _scipy_lsa(ref, ref_pred, x, pred)
    np.testing.assert_allclose(lsa(ref, ref_pred, x, pred), want, rtol=1e-9, atol=1e-8)


def test_lsa_equals_scipy_on_real_digits_traces(real):
    tr, te = real.train, real.test
    want, keep = _scipy_lsa(tr.acts, tr.pred, te.acts, te.pred)
    assert 0 < len(keep) < tr.acts.shape[1]  # the filter really drops neurons here
    got = lsa(tr.acts, tr.pred, te.acts, te.pred)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_lsa_agrees_with_dnn_tip_per_class():
    """dnn-tip's LSA is one KDE; per class it is ours (no filter). It evaluates the density,
    not its log, so 5-d Gaussian clusters keep the densities clear of underflow."""
    rng = np.random.default_rng(3)
    ref_pred, pred = rng.integers(0, 3, 600), rng.integers(0, 3, 120)
    centres = rng.normal(0, 3, (3, 5))
    ref = centres[ref_pred] + rng.normal(size=(600, 5))
    x = centres[pred] + rng.normal(size=(120, 5))
    ours = lsa(ref, ref_pred, x, pred, var_threshold=0)
    for c in range(3):
        tip = surprise.LSA(ref[ref_pred == c], var_threshold=None, max_features=5)
        np.testing.assert_allclose(ours[pred == c], tip(x[pred == c]), rtol=1e-8)


def test_lsa_does_not_depend_on_chunks_or_order(synth):
    ref, ref_pred, x, pred = synth
    whole = lsa(ref, ref_pred, x, pred)
    for chunk in (1, 7, 1000):
        np.testing.assert_allclose(
            lsa(ref, ref_pred, x, pred, chunk_size=chunk), whole, rtol=1e-12
        )
    perm = np.random.default_rng(0).permutation(len(x))
    np.testing.assert_allclose(lsa(ref, ref_pred, x[perm], pred[perm]), whole[perm], rtol=1e-12)
    assert np.isfinite(whole).all()


def test_lsa_singular_covariance_gets_the_documented_ridge(synth, caplog):
    """A duplicated neuron makes every class covariance singular. The result is the KDE with
    RCOND × λmax added to the covariance, computed here through its eigendecomposition."""
    ref, ref_pred, x, pred = synth
    j = np.argmax([min(ref[ref_pred == c, j].var() for c in range(4)) for j in range(12)])
    ref, x = np.c_[ref, ref[:, j]], np.c_[x, x[:, j]]  # a live neuron, so the filter keeps it
    with caplog.at_level(logging.WARNING, logger="robust.guidance.surprise"):
        got = lsa(ref, ref_pred, x, pred)
    assert "singular or ill-conditioned" in caplog.text
    keep = _kept(ref, ref_pred)
    ref, x = ref[:, keep], x[:, keep]
    for c in np.unique(pred):
        want = _ridge_lsa(ref[ref_pred == c], x[pred == c])
        # the ridged covariance still has condition number ~1/RCOND = 1e10, so Cholesky (ours)
        # and the eigendecomposition (the oracle) legitimately differ by ~1e-7 nats on small
        # scores; 1e-5 nats absolute is far below any difference that ranks inputs
        np.testing.assert_allclose(got[pred == c], want, rtol=1e-6, atol=1e-5)


def test_lsa_errors(synth):
    ref, ref_pred, x, pred = synth
    with pytest.raises(DataError, match=r"at least 2 reference trace\(s\).*\{7: 0\}"):
        lsa(ref, ref_pred, x[:3], np.array([7, 0, 1]))
    with pytest.raises(DataError, match="every neuron has variance below"):
        lsa(ref, ref_pred, x, pred, var_threshold=1e9)
    with pytest.raises(ConfigError, match="var_threshold must be"):
        lsa(ref, ref_pred, x, pred, var_threshold=-1)
    with pytest.raises(DataError, match="12 features"):
        lsa(ref, ref_pred, x[:, :5], pred)
    with pytest.raises(DataError, match="one class per trace"):
        lsa(ref, ref_pred, x, pred[:-1])
    with pytest.raises(ConfigError, match="chunk_size must be"):
        lsa(ref, ref_pred, x, pred, chunk_size=0)


def _scott_cov(r):
    """scipy's KDE covariance of traces r: np.cov (ddof 1) × Scott's factor²."""
    n, d = r.shape
    return np.atleast_2d(np.cov(r.T)) * n ** (-2 / (d + 4))


def test_lsa_leave_one_out_equals_scipy_kde_built_without_the_point():
    """The oracle is scipy's KDE of the other n − 1 traces. Its own bandwidth would be that
    of n − 1 traces; ``bw_method`` sets it to the full set's (ours, documented), which in
    one dimension is a scalar: cov_full · factor_full² = cov_without · bw²."""
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(40, 1))
    ref_pred = np.zeros(40, dtype=int)
    got = lsa(ref, ref_pred, ref, ref_pred, var_threshold=0, self_index=np.arange(40))
    want = np.empty(40)
    for i in range(40):
        rest = np.delete(ref, i, axis=0)
        bw = np.sqrt(_scott_cov(ref)[0, 0] / np.cov(rest.T))
        want[i] = -gaussian_kde(rest.T, bw_method=bw).logpdf(ref[i])[0]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # scipy's own bandwidth of the n − 1 traces differs, by little on this sample
    own_bw = [-gaussian_kde(np.delete(ref, i, 0).T).logpdf(ref[i])[0] for i in range(40)]
    np.testing.assert_allclose(got, own_bw, rtol=0.05)


def test_lsa_leave_one_out_equals_the_kernel_sum_without_the_self_term():
    """In several dimensions and classes: each clean input's density is the sum of the other
    kernels of its class (scipy's multivariate normal, the full class's covariance) over
    n − 1; inputs without an own trace, or whose own trace lies in another class, keep the
    plain KDE."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(7)
    ref_pred, pred = rng.integers(0, 3, 150), rng.integers(0, 3, 20)
    centres = rng.normal(0, 3, (3, 6))
    ref = centres[ref_pred] + rng.normal(size=(150, 6))
    x = centres[pred] + rng.normal(size=(20, 6))
    queries, q_pred = np.r_[ref, x], np.r_[ref_pred, pred]
    self_index = np.r_[np.arange(150), np.full(20, -1)]
    self_index[-1] = np.flatnonzero(ref_pred != pred[-1])[0]  # "own" trace of another class
    got = lsa(ref, ref_pred, queries, q_pred, var_threshold=0, self_index=self_index)
    plain = lsa(ref, ref_pred, queries, q_pred, var_threshold=0)
    np.testing.assert_array_equal(got[150:], plain[150:])
    for i in range(150):
        members = np.flatnonzero(ref_pred == ref_pred[i])
        rest = members[members != i]
        kernel = multivariate_normal(mean=np.zeros(6), cov=_scott_cov(ref[members]))
        want = -np.log(kernel.pdf(ref[i] - ref[rest]).sum() / len(rest))
        np.testing.assert_allclose(got[i], want, rtol=1e-9)
    assert (got[:150] > plain[:150]).all()  # each self kernel outweighs its average kernel


def test_lsa_self_exclusion_does_not_depend_on_chunks_device_or_order(synth):
    ref, ref_pred, _, _ = synth
    own = np.arange(len(ref))
    whole = lsa(ref, ref_pred, ref, ref_pred, self_index=own)
    for chunk in (1, 7, 1000):
        again = lsa(
            ref, ref_pred, ref, ref_pred, self_index=torch.from_numpy(own), chunk_size=chunk
        )
        np.testing.assert_allclose(again, whole, rtol=1e-12)
    perm = np.random.default_rng(1).permutation(len(ref))
    shuffled = lsa(ref, ref_pred, ref[perm], ref_pred[perm], self_index=own[perm])
    np.testing.assert_allclose(shuffled, whole[perm], rtol=1e-12)
    none = lsa(ref, ref_pred, ref, ref_pred, self_index=np.full(len(ref), -1))
    np.testing.assert_array_equal(none, lsa(ref, ref_pred, ref, ref_pred))


def test_lsa_self_index_limits(synth):
    ref, ref_pred, x, pred = synth
    last = np.full(len(x), -1)
    last[0] = len(ref) - 1  # the last reference trace: accepted
    assert np.isfinite(lsa(ref, ref_pred, x, pred, self_index=last)).all()
    last[0] = len(ref)
    with pytest.raises(DataError, match=r"^self_index must index the 1500 reference traces"):
        lsa(ref, ref_pred, x, pred, self_index=last)
    with pytest.raises(DataError, match="self_index"):
        lsa(ref, ref_pred, x, pred, self_index=last[:-1])


# ---------------------------------------------------------------------------------------- DSA


def test_dsa_equals_the_brute_force_loop(synth):
    ref, ref_pred, x, pred = synth
    np.testing.assert_allclose(
        dsa(ref, ref_pred, x, pred), _brute_dsa(ref, ref_pred, x, pred), rtol=1e-12
    )


def test_dsa_on_real_digits_with_self_exclusion(real):
    tr, te = real.train, real.test
    np.testing.assert_allclose(
        dsa(tr.acts, tr.pred, te.acts, te.pred),
        _brute_dsa(tr.acts, tr.pred, te.acts, te.pred),
        rtol=1e-12,
    )
    # the reference set scored against itself: with self_index, its own trace is not x_a
    pool = np.r_[tr.acts[:200], te.acts[:50]]
    pool_pred = np.r_[tr.pred[:200], te.pred[:50]]
    own = np.r_[np.arange(200), np.full(50, -1)]
    got = dsa(tr.acts, tr.pred, pool, pool_pred, self_index=own)
    np.testing.assert_allclose(got, _brute_dsa(tr.acts, tr.pred, pool, pool_pred, own), rtol=1e-12)
    assert (got[:200] > 0).mean() > 0.9
    # without it every training input is its own neighbour: the seed's DSA = 0
    assert (dsa(tr.acts, tr.pred, pool[:200], pool_pred[:200]) == 0).all()


def _near_ties(groups=40, ties=16, dim=20, seed=0):
    """Per group: a query and ``ties`` class-0 traces on orthogonal axes around it at distance
    1 + j·1e-9 (j a random permutation of 0..ties-1), so their distances differ in float64 but
    not in float32 (about 6e-8 relative); each has a class-1 trace straight behind it at a
    distinct distance, so b (and so DSA) says which of them was taken as x_a. Groups are 10
    apart: the next-nearest class-0 trace of a query is far outside the float32 rounding."""
    rng = np.random.default_rng(seed)
    ref, ref_pred, x = [], [], []
    for g in range(groups):
        centre = rng.normal(0, 1, dim) + 10.0 * g * np.eye(dim)[g % dim]
        axes, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        offset = rng.permutation(ties)
        for k in range(ties):
            trace = centre + (1.0 + 1e-9 * offset[k]) * axes[:, k]
            ref += [trace, trace + (0.2 + 0.05 * k) * axes[:, k]]
            ref_pred += [0, 1]
        x.append(centre)
    return np.array(ref), np.array(ref_pred), np.array(x), np.zeros(groups, dtype=np.int64)


def test_dsa_near_ties_below_float32_resolution_are_resolved_in_float64():
    """The module promises the float32 screen keeps its 16 nearest candidates and re-measures
    them in float64, so up to 16 traces within float32 rounding of the nearest still give the
    exact x_a. Here 16 traces per query tie in float32 (checked) but not in float64."""
    ref, ref_pred, x, pred = _near_ties()
    same = np.flatnonzero(ref_pred == 0)
    wrong_in_float32 = 0
    for q in x:  # the premise: float32 cannot rank the 16, float64 can
        d64 = np.linalg.norm(ref[same] - q, axis=1)
        d32 = np.linalg.norm(ref[same].astype(np.float32) - q.astype(np.float32), axis=1)
        tied = np.argsort(d64)[:16]
        # distinct in float64, but spread less than float32's relative resolution (6e-8)
        assert len(np.unique(d64[tied])) == 16 and np.ptp(d64[tied]) < 2e-8
        assert np.sort(d64)[16] > 5  # the 17th is far: exactly 16 candidates are needed
        wrong_in_float32 += int(np.argmin(d32) != np.argmin(d64))
    assert wrong_in_float32 >= len(x) // 2  # float32 alone mostly picks the wrong x_a
    want = _brute_dsa(ref, ref_pred, x, pred)
    for chunk in (None, 1):
        np.testing.assert_allclose(dsa(ref, ref_pred, x, pred, chunk_size=chunk), want, rtol=1e-12)
    # the reference set against itself, its own trace excluded: a class-0 trace's 15 group
    # mates tie again (at √2 · (1 ± 1e-9)), now with the exclusion in the screen
    own = np.arange(len(ref))
    got = dsa(ref, ref_pred, ref, ref_pred, self_index=own)
    np.testing.assert_allclose(got, _brute_dsa(ref, ref_pred, ref, ref_pred, own), rtol=1e-12)


def test_dsa_agrees_with_dnn_tip(synth):
    ref, ref_pred, x, pred = synth
    theirs = surprise.DSA(ref, ref_pred, badge_size=50)(x, pred, num_threads=1)
    np.testing.assert_allclose(dsa(ref, ref_pred, x, pred), theirs, rtol=1e-10)


def test_dsa_does_not_depend_on_chunks_device_arrays_or_order(synth):
    ref, ref_pred, x, pred = synth
    whole = dsa(ref, ref_pred, x, pred)
    for chunk in (1, 13):
        np.testing.assert_array_equal(dsa(ref, ref_pred, x, pred, chunk_size=chunk), whole)
    t = [torch.from_numpy(a) for a in (ref, ref_pred, x, pred)]
    np.testing.assert_array_equal(dsa(*t), whole)
    perm = np.random.default_rng(1).permutation(len(x))
    np.testing.assert_array_equal(dsa(ref, ref_pred, x[perm], pred[perm]), whole[perm])


def test_dsa_ties_and_edge_cases():
    ref = np.array([[0.0], [0.0], [2.0], [3.0]])  # two identical traces of class 0
    ref_pred = np.array([0, 0, 1, 1])
    got = dsa(ref, ref_pred, np.array([[0.0], [1.0]]), np.array([0, 0]))
    np.testing.assert_allclose(got, [0.0, 0.5])
    # x_a on top of another class's trace: b = 0 gives inf
    got = dsa(np.array([[0.0], [0.0]]), np.array([0, 1]), np.array([[1.0]]), np.array([0]))
    assert got.tolist() == [np.inf]


def test_dsa_errors(synth):
    ref, ref_pred, x, pred = synth
    with pytest.raises(DataError, match="at least 2 predicted classes"):
        dsa(ref, np.zeros(len(ref), dtype=int), x, np.zeros(len(x), dtype=int))
    with pytest.raises(DataError, match=r"\{9: 0\}"):
        dsa(ref, ref_pred, x[:1], np.array([9]))
    with pytest.raises(DataError, match="self_index must index"):
        dsa(ref, ref_pred, x[:1], pred[:1], self_index=np.array([len(ref)]))
    one = np.array([[0.0], [5.0]])  # class 0's only trace is the input itself
    with pytest.raises(DataError, match=r"\{0: 0\}"):
        dsa(one, np.array([0, 1]), one[:1], np.array([0]), self_index=np.array([0]))
