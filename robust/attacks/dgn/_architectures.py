"""DGN architectures: one convolutional autoencoder (CAE) per class, image in, image out.

Seed 004's MNIST and CIFAR DGNs as its code builds them (``seeds/deepcustom-code-notes.md``
§2; the code, not its README, is right about the decoders' kernels and strides), a small one
for the 8×8 digits, and :func:`fitting` for any other input size. Every decoder ends in a
sigmoid, so outputs lie in [0, 1] before ε-clipping.

Differences from the seed code, on purpose:

* encoder convolutions use He initialisation (truncated normal, std √(2 / fan-in)), which is
  what the seed's ``var()`` meant; it computed the std from the kernel *height* (3) instead,
  giving 0.816 for every layer whatever its fan-in. Encoder biases stay 0.1, decoders keep
  Keras' Glorot-uniform kernels and zero biases;
* batch-norm layers follow the TF defaults (momentum 0.99 → PyTorch 0.01, eps 1e-3), after the
  ReLU, and their statistics see only training data (the seed also updated them on test
  batches).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from robust.errors import ConfigError
from robust.models.layers import check_input_shape

ARCHITECTURES = ("mnist", "cifar", "digits", "fitting")
"""Names accepted by :func:`build`; ``auto`` picks one from the input shape."""


class CAE(nn.Module):
    """Encoder–decoder over (N, C, H, W) in [0, 1]; the output is cropped to the input size."""

    def __init__(self, encoder: nn.Sequential, decoder: nn.Sequential, name: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.architecture = name

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) → (N, C, H, W) in [0, 1]."""
        out = self.decoder(self.encoder(x))
        return out[..., : x.shape[-2], : x.shape[-1]]


def _enc(c_in: int, c_out: int, *, stride: int = 1, padding: int = 0) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=padding)
    std = math.sqrt(2.0 / (c_in * 9))
    nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.constant_(conv.bias, 0.1)
    return nn.Sequential(OrderedDict(conv=conv, relu=nn.ReLU()))


def _dec(c_in: int, c_out: int, kernel: int, stride: int, *, last: bool = False) -> nn.Sequential:
    deconv = nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride)
    nn.init.xavier_uniform_(deconv.weight)
    nn.init.zeros_(deconv.bias)
    if last:
        return nn.Sequential(OrderedDict(deconv=deconv, sigmoid=nn.Sigmoid()))
    bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01)
    return nn.Sequential(OrderedDict(deconv=deconv, relu=nn.ReLU(), bn=bn))


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(2, 2, ceil_mode=True)  # TF "SAME" pooling


def mnist(channels: int = 1) -> CAE:
    """Seed 004's MNIST DGN: 28×28 → 3×3×128 → 28×28 (notes §2)."""
    encoder = nn.Sequential(
        OrderedDict(
            e1=_enc(channels, 32, padding=1), p1=_pool(),  # 14×14×32
            e2=_enc(32, 64, padding=1), p2=_pool(),  # 7×7×64
            e3=_enc(64, 128), p3=_pool(),  # 5×5 → 3×3×128
        )
    )  # fmt: skip
    decoder = nn.Sequential(
        OrderedDict(
            d1=_dec(128, 64, 3, 2),  # 7×7
            d2=_dec(64, 32, 2, 2),  # 14×14
            d3=_dec(32, channels, 2, 2, last=True),  # 28×28
        )
    )
    return CAE(encoder, decoder, "mnist")


def cifar(channels: int = 3) -> CAE:
    """Seed 004's CIFAR DGN: 32×32 → 5×5×128 → 32×32, no pooling (notes §2)."""
    encoder = nn.Sequential(
        OrderedDict(
            e1=_enc(channels, 32),  # 30
            e2=_enc(32, 64, stride=2),  # 14
            e3=_enc(64, 128),  # 12
            e4=_enc(128, 128, stride=2),  # 5
        )
    )
    decoder = nn.Sequential(
        OrderedDict(
            d1=_dec(128, 128, 3, 2),  # 11
            d2=_dec(128, 64, 4, 1),  # 14
            d3=_dec(64, 32, 4, 2),  # 30
            d4=_dec(32, channels, 3, 1, last=True),  # 32
        )
    )
    return CAE(encoder, decoder, "cifar")


def digits(channels: int = 1) -> CAE:
    """A small DGN for 8×8 digits: 8×8 → 2×2×64 → 8×8 (not from a seed)."""
    encoder = nn.Sequential(
        OrderedDict(
            e1=_enc(channels, 32, padding=1), p1=_pool(),  # 4×4×32
            e2=_enc(32, 64, padding=1), p2=_pool(),  # 2×2×64
        )
    )  # fmt: skip
    decoder = nn.Sequential(
        OrderedDict(d1=_dec(64, 32, 2, 2), d2=_dec(32, channels, 2, 2, last=True))
    )
    return CAE(encoder, decoder, "digits")


def fitting(input_shape: Sequence[int]) -> CAE:
    """A DGN for any (C, H, W): MNIST-style SAME conv + pool levels until the smaller side is at
    most 6 (at most 4 levels; 32, 64, 128, 128 channels), mirrored by stride-2 2×2 deconvs, and
    the output cropped to H×W (ceil-mode pooling can make the decoder overshoot by a few pixels).
    """
    c, h, w = check_input_shape(input_shape)
    widths = (32, 64, 128, 128)
    enc: OrderedDict[str, nn.Module] = OrderedDict()
    levels, c_in, side = 0, c, min(h, w)
    while levels < len(widths) and (levels == 0 or side > 6):
        enc[f"e{levels + 1}"] = _enc(c_in, widths[levels], padding=1)
        enc[f"p{levels + 1}"] = _pool()
        c_in, side, levels = widths[levels], math.ceil(side / 2), levels + 1
    dec: OrderedDict[str, nn.Module] = OrderedDict()
    for i in reversed(range(levels)):
        c_out = widths[i - 1] if i else c
        dec[f"d{levels - i}"] = _dec(widths[i], c_out, 2, 2, last=i == 0)
    return CAE(nn.Sequential(enc), nn.Sequential(dec), "fitting")


def auto_architecture(input_shape: Sequence[int]) -> str:
    """``mnist`` for 28×28, ``cifar`` for 32×32, ``digits`` for 8×8, else ``fitting``."""
    _, h, w = check_input_shape(input_shape)
    return {(28, 28): "mnist", (32, 32): "cifar", (8, 8): "digits"}.get((h, w), "fitting")


def build(architecture: str, input_shape: Sequence[int]) -> CAE:
    """One fresh DGN; ``architecture`` is one of :data:`ARCHITECTURES` or ``auto``.

    Raises:
        ConfigError: unknown name, or a fixed architecture whose size does not match.
    """
    c, h, w = check_input_shape(input_shape)
    if architecture == "auto":
        architecture = auto_architecture((c, h, w))
    native = {"mnist": (28, 28), "cifar": (32, 32), "digits": (8, 8)}
    if architecture == "fitting":
        return fitting((c, h, w))
    if architecture not in native:
        raise ConfigError(
            f"architecture must be one of auto, {', '.join(ARCHITECTURES)}, but got "
            f"{architecture=}"
        )
    if native[architecture] != (h, w):
        hn, wn = native[architecture]
        raise ConfigError(
            f"the {architecture} DGN needs {hn}x{wn} inputs (use architecture=fitting for "
            f"others), but got input_shape={(c, h, w)}"
        )
    return {"mnist": mnist, "cifar": cifar, "digits": digits}[architecture](c)


def output_shape(architecture: str, input_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of one generated input (a dry run; used by tests and the benchmark)."""
    model = build(architecture, input_shape).eval()
    with torch.no_grad():
        return tuple(model(torch.zeros(1, *input_shape)).shape[1:])
