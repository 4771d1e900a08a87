"""robust/guidance/coverage.py against seed 000's one-input-at-a-time algorithm and dnn-tip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dnn_tip.neuron_coverage import NAC
from hypothesis import given, settings
from hypothesis import strategies as st

from robust.errors import ConfigError, DataError
from robust.guidance import coverage, neuron_coverage, set_coverage


def _seed_nc(layers: list[np.ndarray], threshold: float = 0.2) -> tuple[np.ndarray, float]:
    """Seed 000's NCoverage, one input at a time: min-max scale each layer's output over the
    input, a conv channel is covered when its scaled map's mean exceeds the threshold."""
    per_input, union = [], None
    for i in range(len(layers[0])):
        covered = []
        for layer in layers:
            out = layer[i]
            with np.errstate(invalid="ignore", divide="ignore"):
                scaled = (out - out.min()) / (out.max() - out.min())
            for neuron in range(out.shape[0]):
                value = scaled[neuron].mean() if out.ndim == 3 else scaled[neuron]
                covered.append(bool(value > threshold))  # NaN is never covered
        covered = np.array(covered)
        per_input.append(covered.mean())
        union = covered if union is None else union | covered
    return np.array(per_input), float(union.mean())


def test_hand_case():
    acts = np.array([[0.0, 1.0, 0.1, 0.5], [2.0, 2.0, 2.0, 2.0], [-1.0, 1.0, 0.0, -0.5]])
    # scaled: [0, 1, .1, .5] -> 2/4; constant -> 0; [0, 1, .5, .25] -> 3/4
    np.testing.assert_allclose(neuron_coverage(acts), [0.5, 0.0, 0.75])
    assert set_coverage(acts) == 0.75


def test_real_dense_and_conv_layers_match_the_seed_loop(trained, digits):
    from robust.models import activations

    x = digits.test.x[:60]
    names = [n for n, m in trained.named_modules() if isinstance(m, torch.nn.ReLU)]
    dense = activations(trained, x).numpy()
    with torch.no_grad():  # the first ReLU's (N, C, H, W) maps
        feats = {}
        handle = dict(trained.named_modules())[names[0]].register_forward_hook(
            lambda _m, _a, out: feats.setdefault("conv", out)
        )
        trained(x)
        handle.remove()
    conv = feats["conv"].numpy()
    assert conv.ndim == 4
    for layers in ([dense], [conv], [conv, dense]):
        want, want_set = _seed_nc(layers)
        np.testing.assert_allclose(neuron_coverage(layers), want, rtol=0, atol=1e-12)
        assert set_coverage(layers) == pytest.approx(want_set)


def test_agrees_with_dnn_tip_nac_on_scaled_traces(real):
    nac = NAC(0.2)
    acts = real.test.acts
    low, high = acts.min(1, keepdims=True), acts.max(1, keepdims=True)
    scores, profiles = nac([(acts - low) / np.where(high > low, high - low, 1)])
    np.testing.assert_allclose(neuron_coverage(acts), scores / acts.shape[1])
    assert set_coverage(acts) == pytest.approx(profiles.any(0).mean())


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 12), seed=st.integers(0, 1000))
def test_contract_and_chunking(n, d, seed):
    rng = np.random.default_rng(seed)
    acts = np.maximum(rng.normal(size=(n, d)), 0)
    nc = neuron_coverage(acts)
    assert nc.shape == (n,) and ((nc >= 0) & (nc <= 1)).all()
    perm = rng.permutation(n)
    np.testing.assert_array_equal(neuron_coverage(acts[perm]), nc[perm])
    np.testing.assert_array_equal(neuron_coverage(torch.from_numpy(acts)), nc)


def test_result_does_not_depend_on_chunking(monkeypatch, real):
    whole = neuron_coverage(real.train.acts)
    monkeypatch.setattr(coverage, "_ROWS_BUDGET", 7 * real.train.acts.shape[1])
    np.testing.assert_array_equal(neuron_coverage(real.train.acts), whole)


def test_bad_input():
    with pytest.raises(ConfigError, match=r"threshold must be in \[0, 1\)"):
        neuron_coverage(np.zeros((2, 3)), threshold=1.0)
    with pytest.raises(DataError, match="acts must be"):
        neuron_coverage(np.zeros((2, 3, 4)))
    with pytest.raises(DataError, match="same inputs"):
        neuron_coverage([np.zeros((2, 3)), np.zeros((3, 3))])
    with pytest.raises(DataError, match="NaN"):
        neuron_coverage(np.array([[np.nan, 1.0]]))
