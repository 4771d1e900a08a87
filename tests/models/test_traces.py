"""Tests of robust/models/traces.py."""

from __future__ import annotations

import pytest
import torch

from robust import guidance
from robust.errors import ConfigError, DataError
from robust.models import activations
from robust.models.predict import predict
from robust.models.traces import Traces, traces


def _traces(n: int, offset: float = 0.0) -> Traces:
    acts = [torch.rand(n, 2, 3, 3) + offset, torch.rand(n, 4) + offset]
    return Traces(acts, torch.softmax(torch.rand(n, 3, dtype=torch.float64), 1))


def test_layers_keep_their_shape_and_probs_are_softmax(model, x):
    t = traces(model, x, ("conv1.relu", "last_hidden"))
    assert len(t) == 10 and len(t.acts) == 2
    assert t.acts[0].shape == (10, 16, 8, 8) and t.acts[1].shape == (10, 64)
    assert t.acts[0].dtype == torch.float32
    assert t.probs.dtype == torch.float64 and t.probs.shape == (10, 10)
    torch.testing.assert_close(t.probs, torch.softmax(predict(model, x).double(), 1))
    torch.testing.assert_close(t.acts[1], activations(model, x, "last_hidden"))


def test_a_single_layer_name_is_one_layer(model, x):
    t = traces(model, x, "conv2", batch_size=3)
    assert len(t.acts) == 1 and t.acts[0].shape == (10, 32, 8, 8)


def test_without_acts_only_probabilities(model, x):
    t = traces(model, x, ("conv1.relu",), with_acts=False)
    assert t.acts == [] and t.flat.shape == (10, 0) and t.probs.shape == (10, 10)


def test_pred_is_argmax_and_flat_concatenates_layers():
    t = _traces(5)
    assert torch.equal(t.pred, t.probs.argmax(1))
    assert t.flat.shape == (5, 18 + 4)
    assert torch.equal(t.flat[:, :18], t.acts[0].flatten(1))
    assert torch.equal(t.flat[:, 18:], t.acts[1])


def test_concat_appends_inputs_layer_by_layer():
    a, b = _traces(4), _traces(6, offset=10.0)
    both = a + b
    assert len(both) == 10 and isinstance(both, Traces)
    for layer, (la, lb) in zip(both.acts, zip(a.acts, b.acts, strict=True), strict=True):
        assert torch.equal(layer, torch.cat([la, lb]))
    assert torch.equal(both.probs, torch.cat([a.probs, b.probs]))
    assert torch.equal(both.pred, torch.cat([a.pred, b.pred]))
    assert torch.equal(both.flat, torch.cat([a.flat, b.flat]))


def test_concat_needs_the_same_layers():
    a = _traces(2)
    b = Traces(a.acts[:1], a.probs)
    with pytest.raises(DataError, match="must cover the same layers to be joined, but got 2 and"):
        a + b


def test_acts_and_probs_must_cover_the_same_inputs():
    with pytest.raises(DataError, match=r"one row per input, 3 like probs, but got \[2\]"):
        Traces([torch.rand(2, 4)], torch.full((3, 2), 0.5))


@pytest.mark.parametrize(
    ("layers", "batch_size", "message"),
    [
        pytest.param((), 8, "layers must name at least one layer", id="no-layer"),
        pytest.param("last_hidden", 0, "batch_size must be an integer of at least 1", id="bs"),
        pytest.param("fc9", 8, "layer must be one of last_hidden, ", id="unknown"),
    ],
)
def test_bad_arguments(model, x, layers, batch_size, message):
    with pytest.raises(ConfigError, match="^" + message) as info:
        traces(model, x, layers, batch_size=batch_size)
    assert "\n" not in str(info.value)


def test_batch_size_one_is_accepted(model, x):
    assert len(traces(model, x[:2], "last_hidden", batch_size=1)) == 2


def test_nc_on_a_conv_layer_counts_channels(trained, digits):
    """The traces keep a conv layer's (N, C, H, W) shape, so NC counts its channels."""
    conv = next(n for n, m in trained.named_modules() if isinstance(m, torch.nn.ReLU))
    t = traces(trained, digits.test.x[:20], (conv, "last_hidden"))
    assert t.acts[0].dim() == 4 and t.flat.shape[1] == t.acts[0][0].numel() + 64
    channels = t.acts[0].shape[1]
    nc = guidance.neuron_coverage(t.acts, 0.2)
    covered = nc * (channels + 64)  # whole neurons: channels count once each
    assert torch.allclose(torch.from_numpy(covered), torch.from_numpy(covered).round())
