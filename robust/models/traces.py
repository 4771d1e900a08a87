"""Activation traces of named layers and softmax probabilities, as guidance metrics take them.

Seed 000 traced each layer with a Keras sub-model and kept its output shape. Here
:func:`traces` runs :func:`robust.models.activations` once per layer with ``flatten=False``, so
a conv layer stays (N, C, H, W) (neuron coverage counts a channel as one neuron), and
:attr:`Traces.flat` gives the (N, features) view that LSA and DSA take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from robust.errors import ConfigError, DataError
from robust.models.activations import activations
from robust.models.predict import predict


@dataclass(frozen=True)
class Traces:
    """Activation traces of some layers and the softmax probabilities of the same N inputs.

    Attributes:
        acts: one (N, ...) float32 tensor per layer, as the layer outputs it (empty when only
            the probabilities were wanted).
        probs: (N, K) float64 softmax probabilities.

    Example:
        >>> t = Traces([torch.rand(3, 4)], torch.full((3, 2), 0.5, dtype=torch.float64))
        >>> len(t + t), (t + t).flat.shape
        (6, torch.Size([6, 4]))
    """

    acts: list[Tensor]
    probs: Tensor

    def __post_init__(self) -> None:
        if self.probs.dim() != 2:
            raise DataError(
                f"probs must have shape (N, K), but got shape {tuple(self.probs.shape)}"
            )
        sizes = [len(a) for a in self.acts]
        if any(n != len(self.probs) for n in sizes):
            raise DataError(
                f"acts must hold one row per input, {len(self.probs)} like probs, but got {sizes}"
            )

    @property
    def pred(self) -> Tensor:
        """(N,) int64 predicted classes (argmax of the probabilities)."""
        return self.probs.argmax(1)

    @property
    def flat(self) -> Tensor:
        """(N, features) float32: every layer flattened per input, concatenated in order."""
        if not self.acts:
            return torch.empty(len(self), 0)
        return torch.cat([a.flatten(1) for a in self.acts], dim=1)

    def __len__(self) -> int:
        return len(self.probs)

    def __add__(self, other: Traces) -> Traces:
        """The inputs of ``self`` followed by those of ``other`` (same layers)."""
        if not isinstance(other, Traces):
            return NotImplemented
        if len(self.acts) != len(other.acts):
            raise DataError(
                f"traces must cover the same layers to be joined, but got {len(self.acts)} and "
                f"{len(other.acts)} layers"
            )
        acts = [torch.cat(pair) for pair in zip(self.acts, other.acts, strict=True)]
        return Traces(acts, torch.cat([self.probs, other.probs]))


def traces(
    model: nn.Module,
    x: Tensor | np.ndarray,
    layers: str | Sequence[str],
    *,
    with_acts: bool = True,
    batch_size: int = 1024,
) -> Traces:
    """Traces of each layer in ``layers`` (if ``with_acts``) and the softmax probabilities.

    Runs in eval mode without autograd; the caller's mode is restored.

    Args:
        model: outputs (N, num_classes) logits; layers named as in ``model.named_modules()``
            or ``"last_hidden"``.
        x: (N, C, H, W) float32 in [0, 1] (numpy is converted).
        layers: a layer name or a sequence of names, one entry of ``acts`` each.
        with_acts: False skips the layers (``acts`` is empty): enough for DeepGini, entropy
            and random.
        batch_size: inputs per forward pass, ≥ 1.

    Returns:
        :class:`Traces` on the CPU: acts float32 in each layer's shape, probs (N, K) float64.

    Raises:
        ConfigError: no layer named while ``with_acts``, an unknown layer, or batch_size < 1.

    Example:
        >>> t = traces(model, ds.test.x, ("conv1.relu", "last_hidden"))
        >>> t.acts[0].dim(), t.flat.shape[0] == len(ds.test.x)
        (4, True)
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if with_acts and not names:
        raise ConfigError(f"layers must name at least one layer, but got {layers=}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer of at least 1, but got {batch_size=}")
    acts = [  # kept in the layer's shape: NC counts a conv channel as one neuron
        activations(model, x, name, batch_size=batch_size, flatten=False)
        for name in (names if with_acts else ())
    ]
    probs = torch.softmax(predict(model, x, batch_size=batch_size).double(), dim=1)
    return Traces(acts, probs)
