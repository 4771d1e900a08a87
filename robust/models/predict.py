"""Batched inference: run a model over a tensor in batches, in eval mode on its device."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from robust.errors import ConfigError
from robust.utils import eval_mode, model_device


def predict(model: nn.Module, x: Tensor | np.ndarray, *, batch_size: int = 1024) -> Tensor:
    """Logits of ``model`` for ``x``, with dropout off and no autograd graph.

    The caller's train/eval mode is restored afterwards.

    Args:
        model: outputs (N, num_classes) logits.
        x: (N, C, H, W) float32 in [0, 1] on any device (numpy is converted).
        batch_size: inputs per forward pass, ≥ 1.

    Returns:
        (N, num_classes) float32 logits on the CPU.

    Raises:
        ConfigError: batch_size < 1.

    Example:
        >>> logits = predict(model, ds.test.x)
        >>> y_pred = logits.argmax(1)
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer of at least 1, but got {batch_size=}")
    x = torch.as_tensor(x)
    device = model_device(model)
    with eval_mode(model), torch.no_grad():
        # split() yields one empty batch for N = 0, so the output keeps its (0, K) shape.
        return torch.cat(
            [model(xb.to(device)).to("cpu", torch.float32) for xb in x.split(batch_size)]
        )
