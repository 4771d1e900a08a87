"""Tests of robust/explain/_rules.py: each rule by hand, per-layer conservation, the registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robust.errors import ConfigError
from robust.explain import LAYER_RULES, relevance
from robust.explain._rules import leaf_layers, plan
from robust.models import build


@pytest.fixture
def tiny() -> nn.Sequential:
    """Linear(2, 2)-ReLU-Linear(2, 1) with hand-picked weights.

    W1 = [[1, -1], [2, 1]], b1 = [0.5, -0.5]; W2 = [[2, 1]], b2 = [0.5].
    At x = (1, 0.5): z1 = (1·1 − 1·0.5 + 0.5, 2·1 + 1·0.5 − 0.5) = (1, 2) = a1 (ReLU),
    logit = 2·1 + 1·2 + 0.5 = 4.5.
    """
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 1.0]]))
        net[0].bias.copy_(torch.tensor([0.5, -0.5]))
        net[2].weight.copy_(torch.tensor([[2.0, 1.0]]))
        net[2].bias.copy_(torch.tensor([0.5]))
    return net


X = torch.tensor([[1.0, 0.5]])


def test_epsilon_rule_by_hand(tiny) -> None:
    # Layer 2: z = 4.5, R(h1) = 1·2/4.5·4.5 = 2, R(h2) = 2·1/4.5·4.5 = 2 (bias keeps 0.5).
    # Layer 1: R(x1) = 1·1/1·2 + 1·2/2·2 = 4;  R(x2) = 0.5·(−1)/1·2 + 0.5·1/2·2 = −0.5.
    r = relevance(tiny, X, "epsilon", first_layer="same")
    torch.testing.assert_close(r, torch.tensor([[4.0, -0.5]]), rtol=0, atol=1e-5)


def test_zplus_rule_by_hand(tiny) -> None:
    # Layer 2: z⁺ = 2·1 + 1·2 = 4 (no bias), R(h) = (2/4·4.5, 2/4·4.5) = (2.25, 2.25).
    # Layer 1: W1⁺ = [[1, 0], [2, 1]], z⁺ = (1·1, 2·1 + 1·0.5) = (1, 2.5).
    # R(x1) = 1·1/1·2.25 + 1·2/2.5·2.25 = 4.05;  R(x2) = 0 + 0.5·1/2.5·2.25 = 0.45.
    r = relevance(tiny, X, "zplus", first_layer="same")
    torch.testing.assert_close(r, torch.tensor([[4.05, 0.45]]), rtol=0, atol=1e-5)
    assert r.sum() == pytest.approx(4.5, abs=1e-5)  # z⁺ conserves the logit


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        # l = 0, h = 1, R(h) = (2, 2) from the epsilon rule above.
        # Neuron 1, w = (1, −1): x·w − l·w⁺ − h·w⁻ = (1 − 0 − 0, −0.5 − 0 + 1) = (1, 0.5), Σ 1.5.
        # Neuron 2, w = (2, 1): (2 − 0 − 0, 0.5 − 0 − 0) = (2, 0.5), Σ 2.5.
        # R(x1) = 1/1.5·2 + 2/2.5·2 = 4/3 + 1.6;  R(x2) = 0.5/1.5·2 + 0.5/2.5·2 = 2/3 + 0.4.
        pytest.param((0.0, 1.0), [4 / 3 + 1.6, 2 / 3 + 0.4], id="l=0,h=1"),
        # l = −1, h = 1.  Neuron 1: (1 + 1 − 0, −0.5 − 0 + 1) = (2, 0.5), Σ 2.5.
        # Neuron 2: (2 + 2, 0.5 + 1) = (4, 1.5), Σ 5.5.
        # R(x1) = 2/2.5·2 + 4/5.5·2 = 1.6 + 16/11;  R(x2) = 0.5/2.5·2 + 1.5/5.5·2 = 0.4 + 6/11.
        pytest.param((-1.0, 1.0), [1.6 + 16 / 11, 0.4 + 6 / 11], id="l=-1,h=1"),
    ],
)
def test_zb_first_layer_by_hand(tiny, bounds, expected) -> None:
    r = relevance(tiny, X, "epsilon", first_layer="zb", bounds=bounds)
    torch.testing.assert_close(r, torch.tensor([expected]), rtol=0, atol=1e-5)
    assert r.sum() == pytest.approx(4.0, abs=1e-5)  # z^B conserves R(h) = 2 + 2
    assert (r >= 0).all()  # and never flips the sign of positive relevance


@pytest.mark.parametrize(("rule", "first_layer"), [("epsilon", "zb"), ("zplus", "same")])
@pytest.mark.parametrize(
    ("name", "shape"),
    [("digits_cnn", (1, 8, 8)), ("mnist_5x30", (1, 8, 8)), ("cifar_keras", (3, 18, 18))],
)
def test_each_layer_conserves_relevance_without_bias(name, shape, rule, first_layer) -> None:
    model = build(name, input_shape=shape).eval()  # Keras init: zero biases
    x = torch.rand(4, *shape)
    layers = leaf_layers(model)
    rules = plan(layers, rule, first_layer, 1e-9, (0.0, 1.0))
    inputs = [x]
    with torch.no_grad():
        for _, layer in layers:
            inputs.append(layer(inputs[-1]))
    logits = inputs.pop()
    r = torch.zeros_like(logits)
    r[:, 0] = logits[:, 0]
    for (layer_name, layer), rule_, a in zip(layers[::-1], rules[::-1], inputs[::-1], strict=True):
        r_in = rule_(layer, a, r)
        assert r_in.shape == a.shape
        torch.testing.assert_close(
            r_in.flatten(1).sum(1), r.flatten(1).sum(1), rtol=1e-4, atol=1e-6, msg=layer_name
        )
        r = r_in


def test_layers_get_their_registered_rule() -> None:
    layers = leaf_layers(build("digits_cnn"))
    assert [name for name, _ in layers] == [
        "conv1.conv", "conv1.relu", "conv2.conv", "conv2.relu", "pool1", "flatten",
        "fc1.linear", "fc1.relu", "drop1", "logits",
    ]  # fmt: skip
    kinds = [type(rule).__name__ for rule in plan(layers, "zplus", "zb", 1e-6, (0, 1))]
    assert kinds == [
        "ZBRule", "PassRule", "ZPlusRule", "PassRule", "RouteRule", "RouteRule",
        "ZPlusRule", "PassRule", "PassRule", "ZPlusRule",
    ]  # fmt: skip
    same = plan(layers, "epsilon", "same", 1e-6, (0, 1))
    assert type(same[0]).__name__ == "EpsilonRule"


@pytest.mark.parametrize(
    "layer", [nn.Tanh(), nn.LSTM(4, 4), nn.AvgPool2d(2)], ids=lambda m: type(m).__name__
)
def test_unsupported_layer_is_named_with_the_supported_ones(layer) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.Sequential(layer), nn.Linear(4, 2))
    name = type(layer).__name__
    match = rf"types Linear, Conv2d, .*, FlattenHWC, but got layer '2\.0' of type {name}$"
    with pytest.raises(ConfigError, match=match):
        relevance(model, torch.rand(2, 1, 2, 2))


def test_subclass_of_a_supported_layer_is_not_assumed_to_behave_like_it() -> None:
    class Scaled(nn.ReLU):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(ConfigError, match="of type Scaled"):
        relevance(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), Scaled()), torch.rand(1, 4))


def test_registry_lists_the_supported_types() -> None:
    names = {t.__name__ for t in LAYER_RULES}
    assert names == {
        "Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "Dropout", "Identity",
        "MaxPool2d", "Flatten", "FlattenHWC",
    }  # fmt: skip
