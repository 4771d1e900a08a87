"""Problem-specific properties of the DGN losses, computed once per class before training.

* ``relevant`` (LRP loss): the class's top-k input indices by mean LRP relevance over its
  inputs (:func:`robust.explain.top_relevant`), as an int64 tensor into ``x[0].flatten()``;
* ``suspicious`` (suspiciousness loss): ``{layer: indices}`` of the class's most suspicious
  dense neurons (k over all dense layers together) and conv feature maps (k per conv layer),
  from hit spectra over the class's inputs (:mod:`robust.faults`); the seed's rules for its
  MNIST and CIFAR targets.

Each property function is ``fn(model, x, y, classes, **options) -> {class: value}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from robust import faults
from robust.attacks.dgn._capture import capture
from robust.attacks.fgsm import fgsm
from robust.errors import ConfigError
from robust.utils import eval_mode, model_device

log = logging.getLogger(__name__)

PropertyFn = Callable[..., dict[int, Any]]
SUSPICIOUS_K = 20
"""Suspicious units per class by default (seed 004: k = 20 on MNIST and CIFAR)."""


def relevant(
    model: nn.Module, x: Tensor, y: Tensor, classes: Sequence[int], *, k: int | None = None,
    rule: str = "epsilon", **_: Any,
) -> dict[int, Tensor]:  # fmt: skip
    """Per class, the top-k most relevant input indices: the LRP relevance of each of its inputs
    for its class, averaged over them, ties to the lower index (as
    :func:`robust.explain.top_relevant`, but one class at a time, so that the other classes
    need no inputs; ``top_relevant`` wants every class of the model)."""
    from robust import explain

    n_values = x[0].numel()
    k = k if k is not None else explain.default_k(tuple(x.shape[1:]))
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_values:
        raise ConfigError(
            f"k must be an integer in [1, {n_values}] (values per input), but got {k=}"
        )
    result: dict[int, Tensor] = {}
    for c in classes:
        xc = x[y == c]
        target = torch.full((len(xc),), c, dtype=torch.int64)
        mean = explain.relevance(model, xc, rule, target=target).flatten(1).double().mean(0)
        result[c] = torch.argsort(-mean.cpu(), stable=True)[:k]
    return result


def hidden_layers(model: nn.Module) -> dict[str, str]:
    """Zoo hidden layers in forward order: name → ``"conv"`` or ``"dense"``.

    A hidden layer is a direct child holding a ``conv`` or ``linear`` module (``conv1``,
    ``fc2``); the output layer ``logits`` is excluded, as in the seed.
    """
    layers: dict[str, str] = {}
    for name, child in model.named_children():
        kinds = {n for n, _ in child.named_children()}
        if "conv" in kinds:
            layers[name] = "conv"
        elif "linear" in kinds:
            layers[name] = "dense"
    if not layers:
        raise ConfigError(
            "the suspiciousness loss needs a zoo model with conv<k>/fc<k> hidden layers, but "
            f"{type(model).__name__} has none"
        )
    return layers


@torch.no_grad()
def _spectra(
    model: nn.Module, x: Tensor, y: Tensor, layers: Sequence[str], threshold: float,
    batch_size: int,
) -> dict[str, faults.Spectrum]:  # fmt: skip
    """Hit spectra of ``layers``' post-activation outputs over (x, y), summed chunk by chunk."""
    device = model_device(model)
    totals: dict[str, faults.Spectrum] = {}
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            logits, acts = capture(model, x[i : i + batch_size].to(device), layers)
            correct = (logits.argmax(1).cpu() == y[i : i + batch_size].cpu()).numpy()
            for name in layers:
                s = faults.spectrum(acts[name], correct, threshold)
                totals[name] = _add(totals[name], s) if name in totals else s
    return totals


def _add(a: faults.Spectrum, b: faults.Spectrum) -> faults.Spectrum:
    return faults.Spectrum(a.ncs + b.ncs, a.nus + b.nus, a.ncf + b.ncf, a.nuf + b.nuf)


def sign_noise(x: Tensor, eps: float, *, seed: int = 0) -> Tensor:
    """``x`` moved by ±``eps`` per element, the signs drawn uniformly (seeded, on the CPU so
    any device gives the same draw), then clipped to [0, 1]: perturbations as large as FGSM's
    that use no gradient, so failing runs for the hit spectra without an attack oracle."""
    g = torch.Generator().manual_seed(int(seed))
    signs = torch.randint(0, 2, x.shape, generator=g).to(x.device, x.dtype) * 2 - 1
    return (x + eps * signs).clamp(0, 1)


def suspicious(
    model: nn.Module, x: Tensor, y: Tensor, classes: Sequence[int], *, k: int | None = None,
    measure: str = "tarantula", star: float = 2.0, threshold: float = 0.0,
    spectrum_inputs: str = "noise", eps: float = 0.0, batch_size: int = 256, **_: Any,
) -> dict[int, dict[str, Tensor]]:  # fmt: skip
    """Per class, ``{layer: indices}`` of its most suspicious neurons and maps (k = 20 default).

    Each class's spectrum is computed over that class's inputs only (as the seed), plus their
    FGSM(``eps``) counterparts when ``spectrum_inputs="fgsm"``, or their random-sign
    counterparts (:func:`sign_noise`) when ``"noise"``; a unit is active when its post-ReLU
    output exceeds ``threshold``.
    """
    if measure not in faults.MEASURES:
        raise ConfigError(
            f"measure must be one of {', '.join(faults.MEASURES)}, but got {measure=}"
        )
    score = faults.MEASURES[measure]
    layers = hidden_layers(model)
    result: dict[int, dict[str, Tensor]] = {}
    for c in classes:
        mask = y == c
        xc, yc = x[mask], y[mask]
        if spectrum_inputs == "fgsm":
            xc = torch.cat([xc, fgsm(model, xc, yc, eps)])
            yc = torch.cat([yc, yc])
        elif spectrum_inputs == "noise":  # no gradient, no attack: the same for every loss
            xc = torch.cat([xc, sign_noise(xc, eps, seed=c)])
            yc = torch.cat([yc, yc])
        spectra = _spectra(model, xc, yc, list(layers), threshold, batch_size)
        if next(iter(spectra.values())).n_fail == 0:
            log.warning(
                "class %s: the model gets all %d of its inputs right, so every unit's "
                "suspiciousness is 0 and the top-%s are the first units by index",
                c,
                int(mask.sum()),
                k or SUSPICIOUS_K,
            )
        scores = {
            name: score(s, star=star) if measure == "dstar" else score(s)
            for name, s in spectra.items()
        }
        top = faults.top_suspicious(scores, SUSPICIOUS_K if k is None else k)
        result[c] = {name: torch.as_tensor(idx, dtype=torch.int64) for name, idx in top.items()}
    return result


PROPERTIES: dict[str, PropertyFn] = {"relevant": relevant, "suspicious": suspicious}
"""Property name → function computing it for every class."""
