"""robust/guidance/score.py: dispatch by metric name equals calling each metric directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robust import guidance
from robust.errors import ConfigError
from robust.guidance import METRICS, TRACE_METRICS, Ranking, assemble_pool, rank, score
from robust.models.traces import Traces
from tests.guidance.conftest import clustered

N_REF, N_ADV = 90, 30
OPTIONS = {"threshold": 0.3, "var_threshold": 1e-4, "seed": 3, "device": "cpu"}


def _split(n_ref: int, n_adv: int, seed: int = 0) -> tuple[Traces, Traces]:
    """Clean reference and adversarial traces (a dense and a conv layer) with consistent
    predictions: the probabilities' argmax is each trace's cluster."""
    n = n_ref + n_adv
    dense, pred = clustered(n, 5, 3, seed)
    gen = torch.Generator().manual_seed(seed)
    conv = torch.rand(n, 2, 3, 3, generator=gen)
    logits = 4 * torch.nn.functional.one_hot(torch.from_numpy(pred), 3).double()
    probs = torch.softmax(logits + torch.rand(n, 3, generator=gen, dtype=torch.float64), 1)
    t = Traces([torch.from_numpy(dense).float(), conv], probs)
    ref = Traces([a[:n_ref] for a in t.acts], probs[:n_ref])
    adv = Traces([a[n_ref:] for a in t.acts], probs[n_ref:])
    return ref, adv


@pytest.fixture
def parts() -> tuple[Traces, Traces]:
    return _split(N_REF, N_ADV)


def _direct(metric: str, ref: Traces, pool: Traces, self_index: torch.Tensor) -> np.ndarray:
    if metric == "nc":
        return guidance.neuron_coverage(pool.acts, OPTIONS["threshold"])
    if metric == "lsa":
        return guidance.lsa(
            ref.flat, ref.pred, pool.flat, pool.pred, OPTIONS["var_threshold"],
            self_index=self_index,
        )  # fmt: skip
    if metric == "dsa":
        return guidance.dsa(ref.flat, ref.pred, pool.flat, pool.pred, self_index=self_index)
    if metric == "deepgini":
        return guidance.deepgini(pool.probs)
    if metric == "entropy":
        return guidance.softmax_entropy(pool.probs)
    return guidance.random_scores(len(pool), OPTIONS["seed"])


@pytest.mark.parametrize("metric", [pytest.param(m, id=m) for m in METRICS])
def test_dispatch_equals_the_metric_called_directly(parts, metric):
    ref, adv = parts
    pool = ref + adv
    self_index = torch.cat([torch.arange(N_REF), torch.full((N_ADV,), -1)])
    got = score(metric, ref, pool, self_index=self_index, **OPTIONS)
    np.testing.assert_array_equal(got, _direct(metric, ref, pool, self_index))
    assert got.shape == (N_REF + N_ADV,) and got.dtype == np.float64
    assert np.isfinite(got).all()


@pytest.mark.parametrize("metric", [pytest.param(m, id=m) for m in METRICS])
def test_rank_orders_the_scores_of_the_pool(parts, metric):
    ref, adv = parts
    pool = assemble_pool(ref, adv, torch.zeros(N_REF), torch.zeros(N_ADV))
    r = rank(metric, ref, pool, **OPTIONS)
    assert isinstance(r, Ranking) and r.seconds >= 0 and r.samples_per_s > 0
    want = score(metric, ref, pool.traces, self_index=pool.self_index, **OPTIONS)
    np.testing.assert_array_equal(r.scores, want)
    np.testing.assert_array_equal(r.order, guidance.order(want, OPTIONS["seed"]))


def test_dsa_in_the_pool_skips_each_clean_input_itself(parts):
    ref, adv = parts
    pool = assemble_pool(ref, adv, torch.zeros(N_REF), torch.zeros(N_ADV))
    with_self = score("dsa", ref, pool.traces, device="cpu")  # each clean input at distance 0
    assert (with_self[:N_REF] == 0).all()
    assert (rank("dsa", ref, pool, device="cpu").scores[:N_REF] > 0).all()


def test_lsa_in_the_pool_leaves_each_clean_input_out_unless_told_not_to(parts):
    ref, adv = parts
    pool = assemble_pool(ref, adv, torch.zeros(N_REF), torch.zeros(N_ADV))
    seed_lsa = guidance.lsa(ref.flat, ref.pred, pool.traces.flat, pool.traces.pred)
    kept = rank("lsa", ref, pool, self_exclusion=False, device="cpu").scores
    left_out = rank("lsa", ref, pool, device="cpu").scores  # the default
    np.testing.assert_array_equal(kept, seed_lsa)
    np.testing.assert_array_equal(left_out[N_REF:], seed_lsa[N_REF:])  # adversarial: no own
    assert (left_out[:N_REF] != seed_lsa[:N_REF]).all()
    # DSA ignores self_exclusion: a clean input is never its own neighbour
    dsa_scores = (rank("dsa", ref, pool, self_exclusion=b, device="cpu").scores for b in (0, 1))
    np.testing.assert_array_equal(*dsa_scores)


def test_probability_metrics_need_no_activations(parts):
    ref, adv = parts
    bare = Traces([], adv.probs)
    for metric in sorted(set(METRICS) - TRACE_METRICS):
        assert score(metric, ref, bare).shape == (N_ADV,), metric


def test_trace_metrics_are_metrics():
    assert {"nc", "lsa", "dsa"} == TRACE_METRICS
    assert TRACE_METRICS.issubset(METRICS)


@pytest.mark.parametrize("metric", ["gini", "", "NC", "all"])
def test_unknown_metric_is_one_line(parts, metric):
    ref, adv = parts
    message = f"metric must be one of nc, lsa, dsa, deepgini, entropy, random, but got {metric=}"
    with pytest.raises(ConfigError, match=f"^{message}$") as info:
        score(metric, ref, adv)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"^metric must be one of nc, "):
        rank(metric, ref, assemble_pool(ref, adv, torch.zeros(N_REF), torch.zeros(N_ADV)))


def test_metric_options_are_still_checked(parts):
    ref, adv = parts
    with pytest.raises(ConfigError, match=r"^threshold must be in \[0, 1\), but got threshold=1"):
        score("nc", ref, adv, threshold=1)
    assert score("nc", ref, adv, threshold=0).shape == (N_ADV,)
