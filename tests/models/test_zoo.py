"""Tests of robust/models/zoo.py and the architectures it registers."""

import math
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from robust.errors import ConfigError
from robust.models import MODELS, ZooModel, activations, build, default_model, for_dataset

# name, native input shape, native classes, last hidden layer, its width, parameter count
ZOO = [
    pytest.param("gtsrb_cnn", (1, 48, 48), 43, "fc2", 256, 2_788_619, id="gtsrb_cnn"),
    pytest.param("intel_cnn", (1, 48, 48), 6, "fc2", 100, 882_498, id="intel_cnn"),
    pytest.param("cifar_cnn", (1, 32, 32), 10, "fc2", 64, 675_722, id="cifar_cnn"),
    pytest.param("mnist_cnn", (1, 28, 28), 10, "fc1", 128, 1_625_866, id="mnist_cnn"),
    pytest.param("fashion_cnn", (1, 28, 28), 10, "fc2", 64, 448_010, id="fashion_cnn"),
    pytest.param("mnist_5x30", (1, 28, 28), 10, "fc5", 30, 27_580, id="mnist_5x30"),
    pytest.param("cifar_keras", (3, 32, 32), 10, "fc1", 64, 122_570, id="cifar_keras"),
    pytest.param("digits_cnn", (1, 8, 8), 10, "fc1", 64, 38_282, id="digits_cnn"),
]
ZOO_ARGS = "name, shape, num_classes, last_hidden, width, n_params"


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_model_is_covered() -> None:
    assert sorted(MODELS) == sorted(p.values[0] for p in ZOO)


@pytest.mark.parametrize(ZOO_ARGS, ZOO)
def test_native_shape_and_parameter_count(
    name, shape, num_classes, last_hidden, width, n_params
) -> None:
    model = build(name)
    assert isinstance(model, ZooModel)
    assert model.spec == {"architecture": name, "input_shape": shape, "num_classes": num_classes}
    assert n_parameters(model) == n_params
    assert model(torch.rand(3, *shape)).shape == (3, num_classes)


@pytest.mark.parametrize(ZOO_ARGS, ZOO)
def test_last_hidden_layer(name, shape, num_classes, last_hidden, width, n_params) -> None:
    model = build(name)
    assert model.last_hidden == last_hidden
    acts = activations(model, torch.rand(4, *shape))
    assert acts.shape == (4, width)
    assert (acts >= 0).all(), "the last hidden layer is read after its ReLU"


@pytest.mark.parametrize(ZOO_ARGS, ZOO)
def test_other_input_shape_and_class_count(
    name, shape, num_classes, last_hidden, width, n_params
) -> None:
    other = (3, 50, 45) if shape[0] == 1 else (1, 36, 30)
    model = build(name, input_shape=other, num_classes=7)
    assert model.spec["input_shape"] == other
    assert model(torch.rand(2, *other)).shape == (2, 7)
    assert activations(model, torch.rand(2, *other)).shape == (2, width)


@pytest.mark.parametrize(ZOO_ARGS, ZOO)
def test_outputs_logits_not_probabilities(
    name, shape, num_classes, last_hidden, width, n_params
) -> None:
    model = build(name).eval()
    assert not any(isinstance(m, nn.Softmax | nn.LogSoftmax) for m in model.modules())
    assert list(model.named_children())[-1][0] == "logits"
    logits = model(torch.rand(8, *shape))
    assert not torch.allclose(logits.sum(1), torch.ones(8))
    assert (logits < 0).any()


@pytest.mark.parametrize(ZOO_ARGS, ZOO)
def test_keras_initialisation(name, shape, num_classes, last_hidden, width, n_params) -> None:
    for module in build(name).modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            weight = module.weight
            fan_in = weight[0].numel()
            fan_out = weight.shape[0] * weight[0, 0].numel()
            limit = math.sqrt(6 / (fan_in + fan_out))
            assert weight.abs().max() <= limit
            assert weight.abs().max() > 0.9 * limit
            assert (module.bias == 0).all()


def test_build_is_seeded() -> None:
    torch.manual_seed(3)
    a = build("digits_cnn")
    torch.manual_seed(3)
    b = build("digits_cnn")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(
    "dataset, expected",
    [
        pytest.param("digits", "digits_cnn", id="digits"),
        pytest.param("mnist", "mnist_cnn", id="mnist"),
        pytest.param("fashion", "fashion_cnn", id="fashion"),
        pytest.param("cifar10", "cifar_cnn", id="cifar10"),
        pytest.param("gtsrb", "gtsrb_cnn", id="gtsrb"),
        pytest.param("intel", "intel_cnn", id="intel"),
    ],
)
def test_default_model(dataset, expected) -> None:
    assert default_model(dataset) == expected


def test_default_model_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match=r"dataset must be one of digits, .*but got dataset='x'"):
        default_model("x")


def test_for_dataset_sizes_the_default_model() -> None:
    ds = SimpleNamespace(name="gtsrb", input_shape=(3, 48, 48), num_classes=43)
    model = for_dataset(ds)
    assert model.spec == {
        "architecture": "gtsrb_cnn",
        "input_shape": (3, 48, 48),
        "num_classes": 43,
    }
    assert model(torch.rand(1, 3, 48, 48)).shape == (1, 43)


def test_unknown_model_name() -> None:
    with pytest.raises(ConfigError, match=r"model name must be one of gtsrb_cnn, .*name='vgg'"):
        build("vgg")


@pytest.mark.parametrize(
    "input_shape",
    [
        pytest.param((1, 8), id="two-dims"),
        pytest.param((0, 8, 8), id="zero-channels"),
        pytest.param((1, 8.0, 8), id="float"),
        pytest.param("1x8x8", id="string"),
    ],
)
def test_bad_input_shape(input_shape) -> None:
    with pytest.raises(ConfigError, match=r"input_shape must be three positive integers"):
        build("digits_cnn", input_shape=input_shape)


def test_smallest_input_shape() -> None:
    assert build("digits_cnn", input_shape=(1, 2, 2))(torch.rand(1, 1, 2, 2)).shape == (1, 10)
    with pytest.raises(ConfigError, match=r"shrink to 0x0 at pool1.*input_shape=\(1, 1, 1\)"):
        build("digits_cnn", input_shape=(1, 1, 1))


def test_input_too_small_for_valid_convolutions() -> None:
    assert build("cifar_keras", input_shape=(3, 18, 18)) is not None
    with pytest.raises(ConfigError, match=r"large enough for cifar_keras .*at conv3"):
        build("cifar_keras", input_shape=(3, 17, 17))


def test_num_classes_limits() -> None:
    assert build("digits_cnn", num_classes=2)(torch.rand(1, 1, 8, 8)).shape == (1, 2)
    with pytest.raises(ConfigError, match=r"num_classes must be an integer of at least 2, .*=1"):
        build("digits_cnn", num_classes=1)


def test_importing_models_does_not_import_mlflow() -> None:
    code = "import sys, robust.models; assert 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
