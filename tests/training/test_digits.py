"""digits_cnn trained with defaults_for("digits") reaches ≥ 0.95 test accuracy (a few seconds).

Builds the split itself from scikit-learn's bundled digits (no robust.data, no network).
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from robust.models import build
from robust.training import defaults_for, fit


@pytest.fixture
def digits() -> dict[str, SimpleNamespace]:
    """Stratified 60/20/20 split of load_digits, scaled /16 to [0, 1], random_state=0."""
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    idx = np.arange(len(y))
    train_idx, rest = train_test_split(idx, test_size=0.4, stratify=y, random_state=0)
    val_idx, test_idx = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=0)
    return {
        name: SimpleNamespace(x=torch.from_numpy(x[i]), y=torch.from_numpy(y[i]))
        for name, i in [("train", train_idx), ("val", val_idx), ("test", test_idx)]
    }


def test_digits_cnn_reaches_95_percent(digits) -> None:
    config = defaults_for("digits")
    model = build("digits_cnn")
    history = fit(
        model,
        digits["train"],
        digits["val"],
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        optimizer=config.optimizer,
        device="cpu",
        progress=False,
    )
    model.eval()
    with torch.no_grad():
        accuracy = (model(digits["test"].x).argmax(1) == digits["test"].y).float().mean().item()
    assert accuracy >= 0.95
    assert history[-1]["val_accuracy"] >= 0.95
