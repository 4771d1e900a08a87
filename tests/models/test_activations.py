"""Tests of robust/models/activations.py."""

import pytest
import torch
from torch import nn

from robust.errors import ConfigError
from robust.models import activations
from tests.markers import requires_cuda


def no_hooks_left(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_shape_and_dtype(model, x) -> None:
    acts = activations(model, x, "conv2")
    assert acts.shape == (10, 32 * 8 * 8)
    assert acts.dtype == torch.float32
    assert acts.device.type == "cpu"


def test_equals_manual_forward_to_the_layer(model, x) -> None:
    model.eval()
    with torch.no_grad():
        manual = model.fc1(model.flatten(model.pool1(model.conv2(model.conv1(x)))))
        pre_relu = model.fc1.linear(model.flatten(model.pool1(model.conv2(model.conv1(x)))))
    assert torch.equal(activations(model, x, "fc1"), manual)
    assert torch.equal(activations(model, x), manual)  # "last_hidden" is fc1
    assert torch.equal(activations(model, x, "fc1.linear"), pre_relu)


def test_several_layers_are_concatenated_in_order(model, x) -> None:
    both = activations(model, x, ["fc1", "logits"])
    assert torch.equal(both[:, :64], activations(model, x, "fc1"))
    assert torch.equal(both[:, 64:], activations(model, x, "logits"))


def test_dropout_is_off_and_mode_restored(model, x) -> None:
    model.train()
    first = activations(model, x, "drop1")
    assert torch.equal(first, activations(model, x, "drop1"))
    assert model.training
    model.eval()
    activations(model, x)
    assert not model.training


def test_no_graph_is_built(model, x) -> None:
    assert not activations(model, x.requires_grad_()).requires_grad


@pytest.mark.parametrize("batch_size", [1, 3, 10, 1024])
def test_batch_size_does_not_change_the_result(model, x, batch_size) -> None:
    expected = activations(model, x, "conv1")
    assert torch.allclose(activations(model, x, "conv1", batch_size=batch_size), expected)


def test_hooks_removed_after_success(model, x) -> None:
    activations(model, x, ["conv1", "fc1", "last_hidden"])
    assert no_hooks_left(model)


def test_hooks_removed_when_forward_raises(model) -> None:
    wrong_channels = torch.rand(2, 3, 8, 8)
    with pytest.raises(RuntimeError):
        activations(model, wrong_channels, ["conv1", "fc1"])
    assert no_hooks_left(model)


def test_hooks_removed_when_a_later_layer_is_unknown(model, x) -> None:
    with pytest.raises(ConfigError):
        activations(model, x, ["fc1", "nope"])
    assert no_hooks_left(model)


def test_unknown_layer_lists_the_available_names(model, x) -> None:
    with pytest.raises(
        ConfigError, match=r"layer must be one of last_hidden, conv1, .*fc1.*but got layer='fc9'"
    ):
        activations(model, x, "fc9")


def test_layer_never_reached_raises() -> None:
    class Detour(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 2)
            self.unused = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    model = Detour()
    with pytest.raises(ConfigError, match=r"must be reached by the forward pass, but 'unused'"):
        activations(model, torch.rand(3, 4), "unused")
    assert no_hooks_left(model)


def test_layer_reached_twice_raises() -> None:
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 4), relu, nn.Linear(4, 4), relu)
    with pytest.raises(ConfigError, match=r"must run once per forward pass.*'1' ran more than"):
        activations(model, torch.rand(3, 4), "1")
    assert no_hooks_left(model)


def test_last_hidden_falls_back_to_the_input_of_the_last_linear() -> None:
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.rand(6, 4)
    expected = torch.relu(model[0](x)).detach()
    assert torch.allclose(activations(model, x), expected)


def test_last_hidden_without_a_linear_raises() -> None:
    with pytest.raises(ConfigError, match=r"needs model.last_hidden or at least one nn.Linear"):
        activations(nn.Sequential(nn.ReLU()), torch.rand(2, 3))


def test_empty_input_keeps_the_feature_width(model) -> None:
    assert activations(model, torch.rand(0, 1, 8, 8)).shape == (0, 64)


def test_numpy_input(model, x) -> None:
    assert torch.equal(activations(model, x.numpy()), activations(model, x))


@pytest.mark.parametrize("batch_size", [0, -1])
def test_batch_size_limit(model, x, batch_size) -> None:
    with pytest.raises(ConfigError, match=rf"batch_size must be .*at least 1, .*={batch_size}"):
        activations(model, x, batch_size=batch_size)
    assert activations(model, x, batch_size=1).shape == (10, 64)


def test_empty_layer_list(model, x) -> None:
    with pytest.raises(ConfigError, match=r"layer must name at least one layer"):
        activations(model, x, [])


@requires_cuda
def test_model_on_cuda_returns_cpu(model, x) -> None:
    acts = activations(model.cuda(), x)
    assert acts.device.type == "cpu"
    assert torch.allclose(acts, activations(model.cpu(), x), atol=1e-5)
