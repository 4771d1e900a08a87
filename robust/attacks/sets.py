"""Crafting an adversarial set for a whole split: one attack spec, or a preset's mix.

An attack stage attacks each split it is given; what it logs for each is an
:class:`AdversarialSet` (inputs, labels, their index into the split, which attack made each)
and the throughput. This is that step, so every caller names the attack the same way.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn

from robust.attacks.presets import PRESETS, AdversarialSet, guided_retraining
from robust.attacks.spec import AttackSpec
from robust.errors import ConfigError
from robust.models import predict


def spec_name(spec: AttackSpec) -> str:
    """The name an adversarial set records for ``spec``: ``pgd_linf``, ``fgsm_l2``,
    ``dgn_<loss>`` (the generators' loss)."""
    if spec.method == "dgn":
        return f"dgn_{spec.generators.spec.get('loss', 'dgn')}"
    return f"{spec.method}_l{spec.norm}"


def craft_set(
    attack: AttackSpec | str,
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    n_adv: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    misclassified_only: bool = False,
) -> tuple[AdversarialSet, float]:
    """Attack the split (x, y) with ``attack`` and time it.

    Args:
        attack: an :class:`AttackSpec` (every input attacked), or a preset's name from
            :data:`PRESETS` (its mix over ``min(n_adv, N)`` inputs drawn with ``seed``).
        model: the attacked classifier (logits).
        x: (N, C, H, W) float32 in [0, 1]; y: (N,) int64.
        n_adv: inputs a preset draws; None: all N.
        seed: the preset's draw and attacks (a spec carries its own seed).
        batch_size: inputs per pass; None picks one for the device.
        misclassified_only: keep only the adversarial inputs whose prediction differs from
            the clean input's (their indices kept).

    Returns:
        The adversarial set and the inputs attacked per second.

    Raises:
        ConfigError: an unknown preset.
    """
    t0 = time.perf_counter()
    if isinstance(attack, str):
        if attack not in PRESETS:
            raise ConfigError(
                f"attack must be an AttackSpec or one of {', '.join(PRESETS)}, but got {attack!r}"
            )
        n = min(n_adv or len(x), len(x))
        adv = guided_retraining(model, x, y, n, seed=seed, batch_size=batch_size)
        return adv, n / (time.perf_counter() - t0)
    x_adv = attack.craft(model, x, y, batch_size=batch_size)
    index = torch.arange(len(x))
    if misclassified_only:
        changed = predict(model, x_adv).argmax(1).cpu() != predict(model, x).argmax(1).cpu()
        x_adv, index = x_adv[changed], index[changed]
    codes = torch.zeros(len(index), dtype=torch.int64)
    adv = AdversarialSet(x_adv, y[index], index, codes, (spec_name(attack),))
    return adv, len(x) / (time.perf_counter() - t0)
