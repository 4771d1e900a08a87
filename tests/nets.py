"""Small models the attack and evaluation tests share: a tiny conv net for any input shape,
a model behind an input rounding (a masked gradient), and top-1 accuracy."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """One 3×3 convolution (4 maps, ReLU) and a linear layer to ``classes`` logits."""

    def __init__(self, c: int, h: int, w: int, classes: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, 4, 3, padding=1)
        self.fc = nn.Linear(4 * h * w, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class Rounded(nn.Module):
    """``inner`` on its input rounded to quarters: zero gradient almost everywhere (a masked,
    "shattered" gradient, Athalye et al. 2018), the same decisions up to the rounding."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 4) / 4)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on (x, y)."""
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


class Noisy(nn.Module):
    """``inner`` on its input plus Gaussian noise of scale ``sigma`` drawn anew in every call
    (clipped to [0, 1]): a randomised defence, whose outputs differ between calls."""

    def __init__(self, inner: nn.Module, sigma: float) -> None:
        super().__init__()
        self.inner, self.sigma = inner, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner((x + self.sigma * torch.randn_like(x)).clamp(0, 1))


def expected_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, draws: int = 20
) -> float:
    """Accuracy of the class of ``model``'s mean logits over ``draws`` calls (seeded): how a
    randomised model is judged, the same for every attack compared."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(123)
        logits = sum(model(x) for _ in range(draws))
    return (logits.argmax(1) == y).float().mean().item()
