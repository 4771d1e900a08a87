"""Train the K per-class generators as one grouped network: K times fewer, K times wider ops.

Every layer of a DGN acts per channel group or is a convolution, so K generators of one
architecture are exactly one network whose convolutions have ``groups=K`` and whose channels
are the K generators' channels side by side: class k's batch goes in as channels
``[k·C, (k+1)·C)`` and comes out there. Batch-norm statistics, max-pooling, ReLU and sigmoid
are per channel, so nothing mixes between classes, and since Adam is element-wise, one Adam
over the grouped parameters with the sum of the K losses is K independent Adams
(``tests/attacks/test_dgn.py`` checks that training all classes at once gives each class
the weights it gets alone). It pays where per-operation overhead dominates: small generators,
small batches, many classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from robust.attacks.dgn._architectures import CAE

_PARAMS = ("weight", "bias")
_BUFFERS = ("running_mean", "running_var")


def _grouped_leaf(layers: Sequence[nn.Module]) -> nn.Module:
    """One grouped module standing for the same layer of K generators."""
    first, k = layers[0], len(layers)
    if isinstance(first, nn.Conv2d):
        new: nn.Module = nn.Conv2d(
            k * first.in_channels, k * first.out_channels, first.kernel_size,
            stride=first.stride, padding=first.padding, groups=k,
        )  # fmt: skip
    elif isinstance(first, nn.ConvTranspose2d):
        new = nn.ConvTranspose2d(
            k * first.in_channels, k * first.out_channels, first.kernel_size,
            stride=first.stride, padding=first.padding, groups=k,
        )  # fmt: skip
    elif isinstance(first, nn.BatchNorm2d):
        new = nn.BatchNorm2d(k * first.num_features, eps=first.eps, momentum=first.momentum)
    elif isinstance(first, nn.ReLU | nn.Sigmoid | nn.MaxPool2d):
        return first
    else:
        raise TypeError(f"cannot group a {type(first).__name__} layer")
    with torch.no_grad():
        for name in _PARAMS + _BUFFERS:
            target = getattr(new, name, None)
            if target is not None:
                target.copy_(torch.cat([getattr(m, name) for m in layers]))
    return new


def _group(modules: Sequence[nn.Module]) -> nn.Module:
    first = modules[0]
    if isinstance(first, nn.Sequential):
        return nn.Sequential(*[_group([m[i] for m in modules]) for i in range(len(first))])
    return _grouped_leaf(modules)


def stack(nets: Sequence[CAE]) -> CAE:
    """One grouped CAE computing all of ``nets`` at once (copies of their current weights)."""
    encoder = _group([n.encoder for n in nets])
    decoder = _group([n.decoder for n in nets])
    device = next(nets[0].parameters()).device
    return CAE(encoder, decoder, nets[0].architecture).to(device)


@torch.no_grad()
def unstack(grouped: CAE, nets: Sequence[CAE]) -> None:
    """Copy the grouped weights and batch-norm statistics back into ``nets``, in place."""
    k = len(nets)
    pairs = zip(grouped.modules(), zip(*(n.modules() for n in nets), strict=True), strict=True)
    for big, smalls in pairs:
        for name in _PARAMS + _BUFFERS:
            value = getattr(big, name, None)
            if isinstance(value, torch.Tensor) and not isinstance(big, nn.Sequential):
                for small, part in zip(smalls, value.chunk(k), strict=True):
                    getattr(small, name).copy_(part)
