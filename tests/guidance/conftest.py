"""Activation traces of the shared trained digits model, and clustered synthetic traces."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from robust.models import activations


@pytest.fixture(scope="session")
def real(trained, digits):
    """Last-hidden traces, predictions and probabilities of the digits model on train/test."""

    def part(x):
        with torch.no_grad():
            logits = trained(x)
        return SimpleNamespace(
            acts=activations(trained, x).numpy().astype(np.float64),
            pred=logits.argmax(1).numpy(),
            probs=torch.softmax(logits.double(), 1).numpy(),
        )

    return SimpleNamespace(train=part(digits.train.x), test=part(digits.test.x))


def clustered(n: int, d: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ReLU'd Gaussian clusters, one per class, like the traces of a trained net."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2, (classes, d))
    pred = rng.integers(0, classes, n)
    acts = np.maximum(centres[pred] + rng.normal(0, 1, (n, d)), 0)
    return acts, pred
