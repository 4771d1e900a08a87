"""Tests of robust/explain/_lrp.py: conservation, an explicit reference, the caller's state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robust.errors import ConfigError
from robust.explain import relevance
from robust.models import build
from robust.models.layers import FlattenHWC
from tests.explain import reference
from tests.markers import requires_cuda

ZOO = [
    pytest.param("digits_cnn", (1, 8, 8), id="digits_cnn"),
    pytest.param("mnist_5x30", (1, 8, 8), id="mnist_5x30"),
    pytest.param("cifar_keras", (3, 18, 18), id="cifar_keras"),  # smallest input it takes
]


def _randomise_biases(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.uniform_(m.bias, -0.1, 0.1)
    return model


@pytest.mark.parametrize("first_layer", ["zb", "same"])
@pytest.mark.parametrize("rule", ["epsilon", "zplus"])
@pytest.mark.parametrize(("name", "shape"), ZOO)
def test_input_relevance_sums_to_the_target_logit_without_bias(name, shape, rule, first_layer):
    model = build(name, input_shape=shape)
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.zeros_(m.bias)
    x = torch.rand(6, *shape)
    target = torch.arange(6) % 10
    r = relevance(model, x, rule, target=target, eps=1e-9, first_layer=first_layer)
    logits = model.eval()(x)
    expected = logits[torch.arange(6), target].detach()
    torch.testing.assert_close(r.flatten(1).sum(1), expected, rtol=1e-4, atol=1e-6)


def test_default_target_is_the_predicted_class() -> None:
    model = build("digits_cnn").eval()
    x = torch.rand(5, 1, 8, 8)
    logits = model(x).detach()
    torch.testing.assert_close(relevance(model, x).flatten(1).sum(1), logits.max(1).values)
    torch.testing.assert_close(
        relevance(model, x), relevance(model, x, target=logits.argmax(1)), rtol=0, atol=0
    )


@pytest.mark.parametrize(("rule", "first_layer"), [("epsilon", "zb"), ("zplus", "same")])
@pytest.mark.parametrize(("name", "shape"), ZOO)
def test_zoo_models_match_the_explicit_reference(name, shape, rule, first_layer) -> None:
    model = _randomise_biases(build(name, input_shape=shape)).eval()
    x = torch.rand(2, *shape)
    target = torch.tensor([4, 9])
    layers = [m for _, m in reference_layers(model)]
    expected = reference.lrp(layers, x, target, rule, first_layer)
    r = relevance(model, x, rule, target=target, first_layer=first_layer)
    torch.testing.assert_close(r, expected, rtol=1e-4, atol=1e-6)


def reference_layers(model: nn.Sequential) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if not isinstance(m, nn.Sequential)]


@pytest.mark.parametrize("first_layer", ["zb", "same"])
@pytest.mark.parametrize("rule", ["epsilon", "zplus"])
def test_strided_conv_matches_the_explicit_reference(rule, first_layer) -> None:
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, stride=2, padding=1),  # 5×5 → 3×3
        nn.ReLU(),
        nn.Conv2d(3, 4, 2, stride=1, padding=0),  # 3×3 → 2×2
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16, 3),
    ).eval()
    x = torch.rand(4, 2, 5, 5)
    target = torch.tensor([0, 1, 2, 1])
    expected = reference.lrp(list(model), x, target, rule, first_layer)
    r = relevance(model, x, rule, target=target, first_layer=first_layer)
    torch.testing.assert_close(r, expected, rtol=1e-4, atol=1e-6)


def test_max_pool_sends_each_window_relevance_to_its_maximum() -> None:
    model = nn.Sequential(nn.MaxPool2d(2), FlattenHWC(), nn.Linear(8, 3)).eval()
    x = torch.rand(2, 2, 5, 4)  # odd height: the last row is dropped, as in Keras
    r = relevance(model, x, first_layer="same", target=torch.tensor([2, 0]))
    # Linear (epsilon): R(p_k) = p_k·w_tk / z_t · logit_t = p_k·w_tk (z_t is the logit; the bias
    # keeps b_t); the reference writes that out, then routes it to each window's maximum.
    expected = reference.lrp(list(model), x, torch.tensor([2, 0]), first_layer="same")
    torch.testing.assert_close(r, expected, rtol=1e-5, atol=1e-6)
    windows = x[:, :, :4].unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)  # (N, C, 2, 2, 4)
    r_windows = r[:, :, :4].unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)
    winner = torch.nn.functional.one_hot(windows.argmax(-1), 4).bool()
    assert (r_windows[~winner] == 0).all() and (r_windows[winner] != 0).all()
    assert (r[:, :, 4, :] == 0).all()  # the dropped row gets nothing


@pytest.mark.parametrize("dims", [1, 2])
def test_batch_norm_gets_the_epsilon_rule_on_its_affine_map(dims) -> None:
    if dims == 1:
        model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
        x = torch.rand(5, 3)
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
            nn.Linear(4 * 3 * 3, 2),
        )  # fmt: skip
        x = torch.rand(5, 1, 3, 3)
    bn = model[1]
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
        bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.0, 0.25]))
        bn.weight.copy_(torch.tensor([1.5, -0.5, 1.0, 2.0]))
        bn.bias.copy_(torch.tensor([0.2, 0.1, -0.3, 0.0]))
    model.eval()
    target = torch.tensor([0, 1, 1, 0, 1])
    for first_layer in ("zb", "same"):
        expected = reference.lrp(list(model), x, target, first_layer=first_layer)
        r = relevance(model, x, target=target, first_layer=first_layer)
        torch.testing.assert_close(r, expected, rtol=1e-4, atol=1e-6)


def test_batch_norm_by_hand() -> None:
    # BN: w = γ/√(σ²+ε_bn) = 2/√(3+1) = 1, b = β − μ·w = 0.5 − 1 = −0.5; Linear(1, 1) weight 2.
    # x = 3: h = 3, g = 1·3 − 0.5 = 2.5, logit = 5 (R = 5).
    # Linear: R(g) = 2.5·2/5·5 = 5.  BN (epsilon): R(h) = 3·1/2.5·5 = 6 (the shift gives −1).
    # Identity first: R(x) = 6.
    bn = nn.BatchNorm1d(1, eps=1.0)
    with torch.no_grad():
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(3.0)
        bn.weight.fill_(2.0)
        bn.bias.fill_(0.5)
    fc = nn.Linear(1, 1, bias=False)
    nn.init.constant_(fc.weight, 2.0)
    model = nn.Sequential(nn.Identity(), bn, fc)
    r = relevance(model, torch.tensor([[3.0]]), first_layer="same")
    torch.testing.assert_close(r, torch.tensor([[6.0]]))


# --- the caller's state ----------------------------------------------------------------------


@pytest.fixture
def dropout_model() -> nn.Module:
    return _randomise_biases(build("digits_cnn"))  # has Dropout(0.25), in training mode


def test_model_mode_params_and_input_are_untouched(dropout_model) -> None:
    model = dropout_model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(7, 1, 8, 8, requires_grad=True)
    x_before = x.detach().clone()
    first = relevance(model, x)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert x.grad is None and torch.equal(x.detach(), x_before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert not first.requires_grad
    # Dropout is off during the computation: repeatable and equal to an eval-mode run.
    assert torch.equal(first, relevance(model, x))
    assert torch.equal(first, relevance(model.eval(), x))
    assert not model.training  # eval stays eval


def test_mode_is_restored_when_the_computation_fails(dropout_model) -> None:
    model = dropout_model.train()
    with pytest.raises(ConfigError, match=r"target must be below the number of logits 10"):
        relevance(model, torch.rand(3, 1, 8, 8), target=torch.tensor([0, 10, 1]))
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_batches_numpy_and_no_grad_give_the_same_result(dropout_model) -> None:
    x = torch.rand(5, 1, 8, 8)
    r = relevance(dropout_model, x)
    assert r.shape == x.shape and r.dtype == torch.float32
    torch.testing.assert_close(relevance(dropout_model, x, batch_size=2), r, rtol=1e-5, atol=1e-7)
    from_numpy = relevance(dropout_model, x.numpy().astype(np.float64))
    assert isinstance(from_numpy, torch.Tensor)
    torch.testing.assert_close(from_numpy, r, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        torch.testing.assert_close(relevance(dropout_model, x), r, rtol=0, atol=0)
    assert relevance(dropout_model, x[:0]).shape == (0, 1, 8, 8)


def test_in_place_relu_does_not_change_the_input() -> None:
    model = nn.Sequential(nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4, 2)).eval()
    x = torch.rand(3, 1, 2, 2) - 0.5
    x_before = x.clone()
    relevance(model, x, first_layer="same")
    assert torch.equal(x, x_before)


@requires_cuda
def test_cuda_matches_cpu() -> None:
    model = _randomise_biases(build("cifar_keras", input_shape=(3, 18, 18))).eval()
    x = torch.rand(9, 3, 18, 18)
    r_cpu = relevance(model, x)
    r_gpu = relevance(model.cuda(), x.cuda(), batch_size=4)
    assert r_gpu.device.type == "cuda"
    torch.testing.assert_close(r_gpu.cpu(), r_cpu, rtol=1e-3, atol=1e-5)


# --- argument checks (both sides of each limit) -----------------------------------------------


@pytest.fixture
def tiny() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


# Fixed values spanning [0.4, 0.9]: a random X could fall wholly inside (0, 0.5) and the
# bounds check below would then (rightly) not fire.
X = torch.linspace(0.4, 0.9, 8).reshape(2, 1, 2, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rule": "z"}, r"rule must be one of epsilon, zplus, but got rule='z'"),
        ({"first_layer": "zplus"}, r"first_layer must be one of zb, same, but got first_layer="),
        ({"eps": 0.0}, r"eps must be a finite number greater than 0, but got eps=0.0"),
        ({"eps": float("inf")}, r"eps must be a finite number greater than 0"),
        (
            {"bounds": (1.0, 1.0)},
            r"bounds must be two finite numbers \(low, high\) with low < high",
        ),
        ({"bounds": (0.0,)}, r"but got bounds=\(0.0,\)"),
        ({"bounds": (-np.inf, 1.0)}, r"bounds must be two finite numbers"),
        ({"bounds": (0.0, 0.5)}, r"x must lie within bounds=\(0.0, 0.5\) for the z\^B rule"),
        ({"batch_size": 0}, r"batch_size must be an integer of at least 1, but got batch_size=0"),
        ({"target": torch.tensor([0.0, 1.0])}, r"target must be integer class indices of shape"),
        ({"target": torch.tensor([0])}, r"target must be integer class indices of shape \(2,\)"),
        (
            {"target": torch.tensor([-1, 0])},
            r"target must be at least 0, but got min\(target\)=-1",
        ),
        ({"target": torch.tensor([2, 0])}, r"target must be below the number of logits 2"),
    ],
)
def test_bad_arguments_raise(tiny, kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        relevance(tiny, X.clone(), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"eps": 1e-30},
        {"bounds": (0.4, 0.9)},  # x may touch the bounds
        {"bounds": (0, 1)},
        {"batch_size": 1},
        {"target": torch.tensor([1, 0])},
        {"first_layer": "same", "bounds": (0.5, 0.6)},  # bounds only matter for z^B
    ],
)
def test_arguments_at_the_limits_are_accepted(tiny, kwargs) -> None:
    x = X.clone().clamp_(0.4, 0.9)
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0.4, 0.9
    assert torch.isfinite(relevance(tiny, x, **kwargs)).all()


def test_models_that_are_not_sequential_are_refused() -> None:
    class Net(nn.Module):
        def forward(self, x):
            return x.flatten(1)

    with pytest.raises(ConfigError, match=r"model must be an nn.Sequential .* of type Net$"):
        relevance(Net(), X)
    with pytest.raises(ConfigError, match="at least one layer"):
        relevance(nn.Sequential(), X)


def test_non_logit_output_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"model must output logits of shape \(N, classes\)"):
        relevance(nn.Sequential(nn.Conv2d(1, 2, 1)), X, first_layer="same")


def test_z_b_needs_bounds_at_the_first_weighted_layer() -> None:
    model = nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)).eval()
    with pytest.raises(ConfigError, match=r"first_layer='zb' needs .* BatchNorm1d layer '0'"):
        relevance(model, torch.rand(3, 4))
    assert relevance(model, torch.rand(3, 4), first_layer="same").shape == (3, 4)


def test_batch_norm_without_running_statistics_is_refused() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False))
    with pytest.raises(ConfigError, match="track_running_stats=False"):
        relevance(model, torch.rand(3, 4))
