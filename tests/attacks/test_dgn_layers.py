"""The DGN architectures layer by layer (seeds/deepcustom-code-notes.md §2 tables; ``fitting``
by its documented rule) and their initialisation (He truncated normal encoders with bias 0.1,
Glorot-uniform decoders with zero bias), which the shape tests alone did not pin down."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robust.attacks import dgn
from robust.attacks.dgn._architectures import output_shape


def _layers(net: nn.Module) -> list[tuple]:
    """(name, kind, in, out, kernel, stride, padding) of every conv, deconv and pool, plus
    the activation that follows each block."""
    out = []
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            kind = "conv" if isinstance(m, nn.Conv2d) else "deconv"
            out.append((name, kind, m.in_channels, m.out_channels, m.kernel_size[0],
                        m.stride[0], m.padding[0]))  # fmt: skip
        elif isinstance(m, nn.MaxPool2d):
            out.append((name, "pool", m.kernel_size, m.stride, m.ceil_mode))
        elif isinstance(m, nn.ReLU | nn.Sigmoid | nn.BatchNorm2d):
            out.append((name, type(m).__name__))
    return out


def _enc(i: int, c_in: int, c_out: int, stride: int = 1, padding: int = 0) -> list[tuple]:
    return [(f"encoder.e{i}.conv", "conv", c_in, c_out, 3, stride, padding),
            (f"encoder.e{i}.relu", "ReLU")]  # fmt: skip


def _pool(i: int) -> list[tuple]:
    return [(f"encoder.p{i}", "pool", 2, 2, True)]  # TF SAME pooling


def _dec(i: int, c_in: int, c_out: int, kernel: int, stride: int, last: bool = False) -> list:
    conv = (f"decoder.d{i}.deconv", "deconv", c_in, c_out, kernel, stride, 0)
    if last:
        return [conv, (f"decoder.d{i}.sigmoid", "Sigmoid")]
    return [conv, (f"decoder.d{i}.relu", "ReLU"), (f"decoder.d{i}.bn", "BatchNorm2d")]


SEED = {
    "mnist": (
        (1, 28, 28),
        _enc(1, 1, 32, padding=1) + _pool(1) + _enc(2, 32, 64, padding=1) + _pool(2)
        + _enc(3, 64, 128) + _pool(3)
        + _dec(1, 128, 64, 3, 2) + _dec(2, 64, 32, 2, 2) + _dec(3, 32, 1, 2, 2, last=True),
    ),
    "cifar": (
        (3, 32, 32),
        _enc(1, 3, 32) + _enc(2, 32, 64, stride=2) + _enc(3, 64, 128)
        + _enc(4, 128, 128, stride=2)
        + _dec(1, 128, 128, 3, 2) + _dec(2, 128, 64, 4, 1) + _dec(3, 64, 32, 4, 2)
        + _dec(4, 32, 3, 3, 1, last=True),
    ),
    "digits": (
        (1, 8, 8),
        _enc(1, 1, 32, padding=1) + _pool(1) + _enc(2, 32, 64, padding=1) + _pool(2)
        + _dec(1, 64, 32, 2, 2) + _dec(2, 32, 1, 2, 2, last=True),
    ),
}  # fmt: skip
"""The seed's MNIST and CIFAR DGNs (notes §2 tables) and our digits one, layer by layer."""


def _fitting(c: int, levels: int) -> list[tuple]:
    widths = (32, 64, 128, 128)
    layers = []
    for i in range(levels):
        layers += _enc(i + 1, widths[i - 1] if i else c, widths[i], padding=1) + _pool(i + 1)
    for j, i in enumerate(reversed(range(levels)), 1):
        layers += _dec(j, widths[i], widths[i - 1] if i else c, 2, 2, last=i == 0)
    return layers


@pytest.mark.parametrize("arch", list(SEED))
def test_seed_architectures_are_the_seed_s_layers(arch):
    shape, want = SEED[arch]
    net = dgn.build(arch, shape)
    assert net.architecture == arch
    assert _layers(net) == want
    assert output_shape(arch, shape) == shape


@pytest.mark.parametrize(
    ("shape", "levels"),
    [
        ((1, 10, 10), 1),  # 10 → 5: at most 6 after one level
        ((3, 12, 20), 1),  # the smaller side decides: 12 → 6
        ((1, 13, 13), 2),  # 13 → 7 → 4 (ceil-mode pooling)
        ((3, 48, 48), 3),  # 48 → 24 → 12 → 6
        ((1, 100, 100), 4),  # 100 → 50 → 25 → 13 → 7: capped at four levels
        ((1, 3, 3), 1),  # always one level
    ],
)
def test_fitting_adds_levels_until_the_smaller_side_is_at_most_6(shape, levels):
    net = dgn.build("fitting", shape)
    assert net.architecture == "fitting"
    assert _layers(net) == _fitting(shape[0], levels)
    assert output_shape("fitting", shape) == shape


def _truncated_normal_std(std: float) -> float:
    """The standard deviation of N(0, std²) truncated to ±2·std."""
    phi = math.exp(-2) / math.sqrt(2 * math.pi)  # the standard normal density at 2
    mass = math.erf(2 / math.sqrt(2))  # P(|z| ≤ 2)
    return std * math.sqrt(1 - 2 * 2 * phi / mass)


@pytest.mark.parametrize("arch", ["mnist", "cifar"])
def test_encoders_are_he_initialised_and_decoders_glorot(arch):
    torch.manual_seed(0)
    net = dgn.build(arch, SEED[arch][0])
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            std = math.sqrt(2.0 / (m.in_channels * 9))
            w = m.weight.detach().double()
            assert w.abs().max() <= 2 * std + 1e-7  # truncated at ±2 std
            if w.numel() >= 10_000:  # enough weights for the spread to say something
                assert w.std().item() == pytest.approx(_truncated_normal_std(std), rel=0.05)
                assert abs(w.mean().item()) < 0.05 * std
            assert torch.all(m.bias == 0.1)
        elif isinstance(m, nn.ConvTranspose2d):
            fan_in = m.weight.shape[1] * m.kernel_size[0] * m.kernel_size[1]
            fan_out = m.weight.shape[0] * m.kernel_size[0] * m.kernel_size[1]
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            w = m.weight.detach()
            assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
            assert torch.all(m.bias == 0)
