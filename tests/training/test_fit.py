"""Tests of robust/training/fit.py."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from robust.errors import ConfigError, DataError
from robust.models import build
from robust.training import fit
from robust.utils import seed_everything
from tests.markers import requires_cuda

KEYS = {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}


def split(x: torch.Tensor, y: torch.Tensor) -> SimpleNamespace:
    return SimpleNamespace(x=x, y=y)


@pytest.fixture
def blobs() -> tuple[SimpleNamespace, SimpleNamespace]:
    """Two linearly separable classes of 1×4×4 images: bright or dark top half."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(64) % 2
    x = torch.rand(64, 1, 4, 4, generator=g) * 0.3
    x[y == 1, :, :2] += 0.6
    return split(x[:48], y[:48]), split(x[48:], y[48:])


@pytest.fixture
def make_model():
    def make() -> nn.Module:
        seed_everything(0)
        return build("digits_cnn", input_shape=(1, 4, 4), num_classes=2)

    return make


def train(model, data, **kwargs):
    args = {"epochs": 3, "lr": 1e-3, "batch_size": 8, "device": "cpu", "progress": False}
    return fit(model, *data, **{**args, **kwargs})


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam", "sgd"])
def test_same_seed_gives_identical_weights_and_metrics(make_model, blobs, optimizer) -> None:
    a, b = make_model(), make_model()
    history_a = train(a, blobs, optimizer=optimizer, seed=5)
    history_b = train(b, blobs, optimizer=optimizer, seed=5)
    assert history_a == history_b
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_other_seed_gives_other_weights(make_model, blobs) -> None:
    a, b = make_model(), make_model()
    train(a, blobs, seed=1)
    train(b, blobs, seed=2)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_global_rng_is_left_alone(make_model, blobs) -> None:
    model = make_model()
    torch.manual_seed(9)
    expected = torch.rand(3)
    torch.manual_seed(9)
    train(model, blobs)
    assert torch.equal(torch.rand(3), expected)


def test_loss_decreases_on_a_separable_problem(make_model, blobs) -> None:
    history = train(make_model(), blobs, epochs=15, optimizer="adam", lr=3e-3)
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < 0.5 * losses[0]
    assert history[-1]["train_accuracy"] == 1.0
    assert history[-1]["val_accuracy"] == 1.0
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_on_epoch_called_once_per_epoch_with_the_metrics(make_model, blobs) -> None:
    calls = []
    history = train(make_model(), blobs, epochs=4, on_epoch=lambda e, m: calls.append((e, m)))
    assert [e for e, _ in calls] == [1, 2, 3, 4]
    assert [m for _, m in calls] == history
    assert all(set(m) == KEYS for m in history)
    assert all(0 <= m["train_accuracy"] <= 1 and m["train_loss"] > 0 for m in history)


def test_without_val_only_train_keys(make_model, blobs) -> None:
    history = fit(make_model(), blobs[0], epochs=2, lr=1e-3, batch_size=8, progress=False)
    assert [set(m) for m in history] == [{"train_loss", "train_accuracy"}] * 2


def test_model_mode_is_restored_and_model_changed(make_model, blobs) -> None:
    model = make_model().eval()
    before = [p.detach().clone() for p in model.parameters()]
    train(model, blobs, epochs=1)
    assert not model.training
    assert any(not torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))


def test_batch_larger_than_the_data(make_model, blobs) -> None:
    assert len(train(make_model(), blobs, batch_size=1000, epochs=2)) == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param(
            {"epochs": 0},
            r"epochs must be an integer of at least 1, but got epochs=0",
            id="epochs",
        ),
        pytest.param(
            {"epochs": -1}, r"epochs must be .*at least 1, but got epochs=-1", id="epochs-negative"
        ),
        pytest.param(
            {"epochs": 1.5}, r"epochs must be an integer .*epochs=1.5", id="epochs-float"
        ),
        pytest.param(
            {"batch_size": 0}, r"batch_size must be .*at least 1, .*batch_size=0", id="batch"
        ),
        pytest.param(
            {"lr": 0.0}, r"lr must be a finite number greater than 0, but got lr=0.0", id="lr-zero"
        ),
        pytest.param(
            {"lr": -1e-3}, r"lr must be .*greater than 0, but got lr=-0.001", id="lr-negative"
        ),
        pytest.param({"lr": float("inf")}, r"lr must be a finite number .*lr=inf", id="lr-inf"),
        pytest.param(
            {"optimizer": "adagrad"},
            r"optimizer must be one of rmsprop, adam, sgd, but got optimizer='adagrad'",
            id="optimizer",
        ),
        pytest.param(
            {"seed": -1}, r"seed must be a non-negative integer, but got seed=-1", id="seed"
        ),
        pytest.param({"device": "tpu"}, r"device must be one of auto, cpu, cuda", id="device"),
    ],
)
def test_argument_errors(make_model, blobs, kwargs, message) -> None:
    model = make_model()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ConfigError, match=message):
        train(model, blobs, **kwargs)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"epochs": 1}, id="epochs"),
        pytest.param({"batch_size": 1}, id="batch"),
        pytest.param({"lr": 1e-12}, id="lr"),
        pytest.param({"seed": 0}, id="seed"),
    ],
)
def test_smallest_valid_arguments(make_model, blobs, kwargs) -> None:
    assert len(train(make_model(), blobs, **{"epochs": 1, **kwargs})) == 1


def test_data_errors(make_model, blobs) -> None:
    train_split, val_split = blobs
    bad_labels = split(train_split.x, train_split.y + 2)
    with pytest.raises(DataError, match=r"train.y must hold labels in \[0, 2\), but .*\[2, 3\]"):
        train(make_model(), (bad_labels, val_split))
    short = split(val_split.x, val_split.y[:-1])
    with pytest.raises(DataError, match=r"val must hold N ≥ 1 inputs and N labels"):
        train(make_model(), (train_split, short))
    empty = split(train_split.x[:0], train_split.y[:0])
    with pytest.raises(DataError, match=r"train must hold N ≥ 1 inputs"):
        train(make_model(), (empty, val_split))
    float_labels = split(train_split.x, train_split.y.float())
    with pytest.raises(DataError, match=r"train.y must hold integer class labels"):
        train(make_model(), (float_labels, val_split))


@requires_cuda
def test_trains_on_cuda(make_model, blobs) -> None:
    model = make_model()
    history = train(model, blobs, device="cuda", epochs=2)
    assert next(model.parameters()).device.type == "cuda"
    assert len(history) == 2
