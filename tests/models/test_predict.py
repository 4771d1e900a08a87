"""Tests of robust/models/predict.py."""

import pytest
import torch

from robust.errors import ConfigError
from robust.models import build, predict
from tests.markers import requires_cuda


@pytest.fixture
def model() -> torch.nn.Module:
    return build("digits_cnn")


def test_logits_in_eval_mode_without_graph(model) -> None:
    x = torch.rand(9, 1, 8, 8)
    model.train()
    logits = predict(model, x)
    assert model.training, "the caller's mode is restored"
    model.eval()
    with torch.no_grad():
        expected = model(x)
    assert torch.equal(logits, expected)
    assert logits.shape == (9, 10)
    assert logits.device.type == "cpu"
    assert not predict(model, x.requires_grad_()).requires_grad


@pytest.mark.parametrize("batch_size", [1, 4, 9, 1024])
def test_batch_size_does_not_change_the_result(model, batch_size) -> None:
    x = torch.rand(9, 1, 8, 8)
    assert torch.allclose(predict(model, x, batch_size=batch_size), predict(model, x), atol=1e-6)


def test_empty_input(model) -> None:
    assert predict(model, torch.rand(0, 1, 8, 8)).shape == (0, 10)


@pytest.mark.parametrize("batch_size", [0, -3])
def test_batch_size_limit(model, batch_size) -> None:
    assert predict(model, torch.rand(2, 1, 8, 8), batch_size=1).shape == (2, 10)
    with pytest.raises(ConfigError, match=rf"batch_size must be .*at least 1, .*={batch_size}"):
        predict(model, torch.rand(2, 1, 8, 8), batch_size=batch_size)


@requires_cuda
def test_model_on_cuda(model) -> None:
    x = torch.rand(5, 1, 8, 8)
    expected = predict(model, x)
    logits = predict(model.cuda(), x)
    assert logits.device.type == "cpu"
    assert torch.allclose(logits, expected, atol=1e-5)
