"""Activations (activation traces) of any named layer, for guidance metrics, spectra and LRP.

``activations(model, x, "last_hidden")`` returns what the seeds called the activation trace of
the last hidden layer: post-ReLU, dropout off, flattened to (N, features). Hooks are registered
in ``try/finally`` and always removed, even if the forward pass raises (as Captum does), and a
layer that the forward pass never reached raises instead of returning nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from robust.errors import ConfigError
from robust.utils import eval_mode, model_device

LAST_HIDDEN = "last_hidden"
"""Alias resolved to ``model.last_hidden``; see :func:`activations`."""


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The last ``nn.Linear`` in ``named_modules`` order (the fallback for ``last_hidden``)."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(
            f'layer="{LAST_HIDDEN}" needs model.last_hidden or at least one nn.Linear, but '
            f"{type(model).__name__} has neither; name a layer instead"
        )
    return linears[-1]


def _hook(model: nn.Module, layer: str, key: str, captured: dict[str, Tensor]) -> RemovableHandle:
    """Register a hook storing ``layer``'s output (or the last Linear's input) in ``captured``."""

    def store(value: object) -> None:
        if key in captured:
            raise ConfigError(
                f"layer must run once per forward pass to have well-defined activations, but "
                f"{layer!r} ran more than once"
            )
        if not isinstance(value, Tensor):
            raise ConfigError(
                f"layer must output a tensor, but {layer!r} output {type(value).__name__}"
            )
        captured[key] = value.detach()

    if layer == LAST_HIDDEN and not hasattr(model, "last_hidden"):
        _, linear = _last_linear(model)
        return linear.register_forward_pre_hook(lambda _m, args: store(args[0]))

    name = getattr(model, "last_hidden", layer) if layer == LAST_HIDDEN else layer
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        available = ", ".join(n for n in modules if n)
        raise ConfigError(
            f"layer must be one of {LAST_HIDDEN}, {available}, but got layer={layer!r}"
        )
    return modules[name].register_forward_hook(lambda _m, _args, out: store(out))


def activations(
    model: nn.Module,
    x: Tensor | np.ndarray,
    layer: str | Sequence[str] = LAST_HIDDEN,
    *,
    batch_size: int = 1024,
    flatten: bool = True,
) -> Tensor:
    """Outputs of one or more named layers, flattened per input and concatenated.

    Runs in eval mode (dropout off; the caller's mode is restored) under ``torch.no_grad()``,
    in batches on the model's device.

    Args:
        model: any module; layers are named as in ``model.named_modules()`` (e.g. ``"fc2"``,
            ``"conv1.relu"``, ``"fc2.linear"`` for the pre-activation of a zoo layer).
        x: (N, C, H, W) float32 in [0, 1] (any shape the model accepts; numpy is converted).
        layer: a layer name, a sequence of names (columns concatenated in that order), or
            ``"last_hidden"``: ``model.last_hidden`` for zoo models; for a model without that
            attribute, the **input of the last** ``nn.Linear`` (the output layer's features).
        batch_size: inputs per forward pass.
        flatten: False keeps one layer's output shape, e.g. (N, C, H, W) for a conv layer
            (neuron coverage counts a channel as one neuron); only for a single layer.

    Returns:
        (N, features) float32 on the CPU, where features sums each layer's flattened size
        (with ``flatten=False``: (N, ...) as the layer outputs it).

    Raises:
        ConfigError: unknown layer (the message lists the available names), a layer the
            forward pass did not reach or reached twice, or batch_size < 1.

    Example:
        >>> from robust.models import build
        >>> model = build("digits_cnn")
        >>> activations(model, torch.rand(5, 1, 8, 8)).shape
        torch.Size([5, 64])
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer of at least 1, but got {batch_size=}")
    layers = [layer] if isinstance(layer, str) else list(layer)
    if not layers:
        raise ConfigError(f"layer must name at least one layer, but got {layer=}")
    if not flatten and len(layers) != 1:
        raise ConfigError(f"flatten=False keeps one layer's shape, but got {len(layers)} layers")
    keys = [f"{i}:{name}" for i, name in enumerate(layers)]
    x = torch.as_tensor(x)
    device = model_device(model)
    captured: dict[str, Tensor] = {}
    outputs: list[list[Tensor]] = [[] for _ in layers]
    handles: list[RemovableHandle] = []
    try:
        for name, key in zip(layers, keys, strict=True):
            handles.append(_hook(model, name, key, captured))
        with eval_mode(model), torch.no_grad():
            for xb in x.split(batch_size):  # one empty batch when N = 0
                captured.clear()
                model(xb.to(device))
                for i, (name, key) in enumerate(zip(layers, keys, strict=True)):
                    if key not in captured:
                        raise ConfigError(
                            f"layer must be reached by the forward pass, but {name!r} was not "
                            "called (is it registered but unused?)"
                        )
                    out = captured[key]
                    if not flatten:
                        flat = out
                    else:
                        flat = out.flatten(1) if out.dim() > 1 else out.unsqueeze(1)
                    outputs[i].append(flat.to("cpu", torch.float32))
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat([torch.cat(parts) for parts in outputs], dim=1)
