"""Tests of robust/training/optimizers.py: Keras-equivalent update rules."""

import pytest
import torch

from robust.errors import ConfigError
from robust.training import OPTIMIZERS, build_optimizer


def keras_rmsprop(w, grads, lr=1e-3, rho=0.9, eps=1e-7):
    """Keras/TF 2.5 RMSprop (momentum 0, not centered), written out."""
    rms = torch.zeros_like(w)
    for g in grads:
        rms = rho * rms + (1 - rho) * g**2
        w = w - lr * g / (torch.sqrt(rms) + eps)
    return w


def test_rmsprop_matches_keras() -> None:
    w0 = torch.randn(5, dtype=torch.float64)
    grads = [torch.randn(5, dtype=torch.float64) for _ in range(4)]
    w = torch.nn.Parameter(w0.clone())
    opt = build_optimizer("rmsprop", [w], lr=1e-3)
    for g in grads:
        w.grad = g.clone()
        opt.step()
    assert torch.allclose(w.detach(), keras_rmsprop(w0, grads), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "name, cls",
    [
        pytest.param("rmsprop", torch.optim.RMSprop, id="rmsprop"),
        pytest.param("adam", torch.optim.Adam, id="adam"),
        pytest.param("sgd", torch.optim.SGD, id="sgd"),
    ],
)
def test_names(name, cls) -> None:
    opt = build_optimizer(name, [torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    assert type(opt) is cls
    assert opt.defaults["lr"] == 0.5
    assert name in OPTIMIZERS


def test_keras_epsilons() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    assert build_optimizer("rmsprop", params, 1e-3).defaults["alpha"] == 0.9
    assert build_optimizer("rmsprop", params, 1e-3).defaults["eps"] == 1e-7
    assert build_optimizer("adam", params, 1e-3).defaults["eps"] == 1e-7


def test_unknown_name() -> None:
    with pytest.raises(ConfigError, match=r"optimizer must be one of rmsprop, adam, sgd, .*'x'"):
        build_optimizer("x", [torch.nn.Parameter(torch.zeros(1))], 1e-3)


def test_lr_limit() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    assert build_optimizer("sgd", params, 1e-9) is not None
    with pytest.raises(ConfigError, match=r"lr must be greater than 0, but got lr=0"):
        build_optimizer("sgd", params, 0)
