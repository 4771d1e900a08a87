"""Shared chores of the gradient attacks: argument checks, labels, the input gradient."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robust.errors import ConfigError
from robust.utils import eval_mode, model_device


def check_inputs(x: Tensor, y: Tensor | None, use_predicted: bool) -> None:
    """``x`` is (N, C, H, W) float in [0, 1]; ``y`` is (N,) integer labels unless predicted."""
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ConfigError(
            f"x must be a float tensor of shape (N, C, H, W), but got "
            f"{type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}"
        )
    if x.numel():
        low, high = torch.aminmax(x)  # one pass over x
        if low < 0 or high > 1:
            raise ConfigError(f"x must lie in [0, 1], but got values in [{low:.3g}, {high:.3g}]")
    if use_predicted:
        return
    if y is None:
        raise ConfigError("y (the true labels) is required unless use_predicted=True")
    if y.shape != (x.shape[0],) or y.is_floating_point():
        raise ConfigError(
            f"y must be integer labels of shape ({x.shape[0]},), but got "
            f"{y.dtype} of shape {tuple(y.shape)}"
        )


def check_call(
    x: Tensor,
    y: Tensor | None,
    eps: float,
    *,
    use_predicted: bool,
    batch_size: int | None,
    **counts: int,
) -> None:
    """The checks every attack makes of its call: ε ≥ 0, each of ``counts`` an integer ≥ 1,
    ``batch_size`` None or ≥ 1, and the inputs and labels (:func:`check_inputs`)."""
    check_positive("eps", eps, allow_zero=True)
    for name, value in counts.items():
        check_count(name, value)
    if batch_size is not None:
        check_count("batch_size", batch_size)
    check_inputs(x, y, use_predicted)


def check_number(
    name: str, value: float, low: float, high: float, *, open_low: bool = False
) -> None:
    """``value`` a number in [low, high] (``open_low``: in (low, high]), else a ConfigError."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not (low < value if open_low else low <= value) or not value <= high:
        interval = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
        raise ConfigError(f"{name} must be a number in {interval}, but got {name}={value!r}")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok:
        bound = "at least 0" if allow_zero else "greater than 0"
        raise ConfigError(f"{name} must be {bound}, but got {name}={value!r}")


def batch_size_for(x: Tensor, device: torch.device, batch_size: int | None) -> int:
    """``batch_size``, or an automatic one: 1024 on CUDA; on the CPU about 2**19 input values
    per batch, rounded down to a power of two (32..1024).

    Measured with ``benchmarks/attacks.py`` on 2 CPU cores: seed 004's CIFAR CNN runs PGD 1.6×
    slower per image at batch 512 than at 128 (its activations leave the cache), while the MNIST
    dense net is fastest at 512; this rule picks 128 and 512 for them.
    """
    if batch_size is not None:
        check_count("batch_size", batch_size)
        return batch_size
    if device.type == "cuda":
        return 1024
    per_sample = max(1, x[0].numel()) if len(x) else 1
    return max(32, min(1024, 1 << max(0, (2**19 // per_sample).bit_length() - 1)))


def check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer of at least 1, but got {name}={value!r}")


@torch.no_grad()
def labels(
    model: nn.Module, x: Tensor, y: Tensor | None, use_predicted: bool, batch_size: int
) -> Tensor:
    """The labels to attack: ``y``, or the model's predictions (on the CPU, int64)."""
    if not use_predicted:
        return y.detach().to("cpu", torch.int64)
    device = model_device(model)
    return (
        torch.cat(
            [
                model(x[i : i + batch_size].to(device)).argmax(1).cpu()
                for i in range(0, len(x), batch_size)
            ]
        )
        if len(x)
        else torch.empty(0, dtype=torch.int64)
    )


def input_gradient(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """∇ₓ of the summed cross-entropy of the model's logits (per-sample, batch-independent).

    Only the input's gradient is taken (``autograd.grad``), so no parameter ``.grad`` changes.
    """
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


@dataclass(frozen=True)
class Setup:
    """What an attack runs on: the model to differentiate, its device and the memory format
    its inputs should have (see :func:`attack_mode`)."""

    model: nn.Module
    device: torch.device
    memory_format: torch.memory_format

    def batch(self, x: Tensor) -> Tensor:
        """A float32 copy of ``x`` on the device, in the memory format."""
        return (
            x.detach().to(self.device, torch.float32).contiguous(memory_format=self.memory_format)
        )


def fast_copy(model: nn.Module, device: torch.device) -> tuple[nn.Module, torch.memory_format]:
    """The model an attack differentiates, and the memory format its inputs should have.

    On the CPU a model with 2-D convolutions is attacked through a private channels-last copy
    (the caller's model is not touched): oneDNN's NHWC kernels, above all max pooling, make
    PGD(20) on seed 004's CIFAR CNN about 1.3× faster on 2 cores (``benchmarks/attacks.py``).
    The convolutions then sum in another order, so gradients differ from the NCHW ones by float
    rounding (the L∞ sign steps almost never). A model that cannot be copied runs as it is.
    """
    if device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        try:
            return copy.deepcopy(model).to(memory_format=torch.channels_last), torch.channels_last
        except Exception:  # e.g. a module holding an uncopyable handle
            pass
    return model, torch.contiguous_format


@contextlib.contextmanager
def attack_mode(model: nn.Module) -> Iterator[Setup]:
    """Eval mode for the attack (restored afterwards); yields what to run it on
    (:func:`fast_copy`)."""
    with eval_mode(model):
        device = model_device(model)
        target, memory_format = fast_copy(model, device)
        yield Setup(target, device, memory_format)


@contextlib.contextmanager
def seeded_model(seed: int) -> Iterator[None]:
    """Torch's global generators seeded with ``seed`` inside a fork: a randomised model's own
    draws (noise, dropout at test time) repeat from run to run, and the caller's random state
    is the same afterwards."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
