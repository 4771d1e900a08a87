"""Fixtures of the model tests: an untrained digits CNN and a batch of random inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robust.models import build


@pytest.fixture
def model() -> nn.Module:
    return build("digits_cnn")


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(10, 1, 8, 8)
