"""A small digits pool (clean inputs and noisy stand-ins for adversarial ones), its test sets,
an untrained original model, and a recording stand-in for ``robust.training.fit``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from robust import models, retraining
from robust.data import Split
from robust.retraining import QUANTITIES, Curves, Point

N_CLEAN, N_ADV = 60, 40


def curves(n_inputs, accuracy, fit_s=None) -> Curves:
    """Curves from per-seed rows of combined accuracy (other quantities copy it)."""
    points = []
    for seed, row in enumerate(accuracy):
        for step, (k, acc) in enumerate(zip(n_inputs, row, strict=True)):
            fit = 0.0 if fit_s is None else fit_s[seed][step]
            scores = dict.fromkeys(QUANTITIES, acc)
            points.append(Point(seed, step if n_inputs[0] == 0 else step + 1, k, k, fit, scores))
    return Curves.from_points(reversed(points))  # any order


def _noisy(x: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + 0.3 * torch.rand(x.shape, generator=g)).clamp(0, 1)


@pytest.fixture(scope="session")
def pool(digits) -> retraining.Pool:
    """60 clean training inputs, then 40 noisy copies of other ones (source 1)."""
    x = torch.cat([digits.train.x[:N_CLEAN], _noisy(digits.train.x[100 : 100 + N_ADV], 1)])
    y = torch.cat([digits.train.y[:N_CLEAN], digits.train.y[100 : 100 + N_ADV]])
    source = torch.cat([torch.zeros(N_CLEAN), torch.ones(N_ADV)]).long()
    return retraining.Pool(x, y, source)


@pytest.fixture(scope="session")
def tests(digits) -> retraining.EvalSets:
    adv = Split(_noisy(digits.test.x[:50], 2), digits.test.y[:50])
    return retraining.EvalSets(Split(digits.test.x[:50], digits.test.y[:50]), adv)


@pytest.fixture
def original() -> models.ZooModel:
    torch.manual_seed(123)
    return models.build("digits_cnn", (1, 8, 8), 10).eval()


@pytest.fixture
def recorder():
    """A stand-in for ``fit``: records each call's initial weights and training data, then
    moves every weight by +0.01 (so a continued model is told apart from a fresh one)."""
    calls = []

    def fake_fit(model, train, val, **kwargs):
        calls.append(
            SimpleNamespace(
                model=model,
                initial={k: v.detach().clone() for k, v in model.state_dict().items()},
                x=train.x.clone(),
                y=train.y.clone(),
                kwargs=kwargs,
            )
        )
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)
        calls[-1].final = {k: v.detach().clone() for k, v in model.state_dict().items()}

    fake_fit.calls = calls
    return fake_fit
