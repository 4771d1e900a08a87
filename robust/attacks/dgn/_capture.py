"""Layer outputs of one forward pass, with the graph kept (for losses) and hooks always removed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from robust.errors import ConfigError


def capture(
    model: nn.Module, x: Tensor, layers: Sequence[str], *, pre_activation: bool = False
) -> tuple[Tensor, dict[str, Tensor]]:
    """One forward pass: the logits and the named layers' outputs (graph kept, hooks removed).

    With ``pre_activation`` a zoo layer's affine child (``<name>.conv``/``<name>.linear``) is
    read instead of its post-ReLU output.
    """
    modules = dict(model.named_modules())
    captured: dict[str, Tensor] = {}
    handles = []
    try:
        for name in layers:
            module = _inner(modules, name) if pre_activation else modules.get(name)
            if module is None:
                raise ConfigError(f"layer must be one of the model's layers, but got {name!r}")
            handles.append(module.register_forward_hook(_store(captured, name)))
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in layers if n not in captured]
    if missing:
        raise ConfigError(f"layers must run in the model's forward pass, but {missing} did not")
    return logits, captured


def _inner(modules: Mapping[str, nn.Module], name: str) -> nn.Module:
    """The affine part of a zoo layer: ``<name>.conv`` / ``<name>.linear``, else the layer."""
    for child in ("conv", "linear"):
        if f"{name}.{child}" in modules:
            return modules[f"{name}.{child}"]
    if name not in modules:
        raise ConfigError(f"layer must be one of the model's layers, but got {name!r}")
    return modules[name]


def _store(captured: dict[str, Tensor], name: str) -> Callable[..., None]:
    def hook(_module: nn.Module, _args: Any, out: Tensor) -> None:
        captured[name] = out

    return hook
