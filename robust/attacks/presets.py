"""Seed 000's adversarial mix (guided retraining, ``seeds/guided-retraining-code-notes.md`` §2).

``n_adv`` distinct inputs drawn without replacement, split in thirds: the first third attacked
with L2-BIM ("CW" in the seed), the second with L1-BIM ("BIM"), the last with L∞-FGSM, all at
ε = 0.05, the BIMs with foolbox's defaults (10 steps, step 0.2·ε, no random start).
Unsuccessful adversarials are kept, as in the seed. Differences: the draw is seeded, and the
gradient is that of the logits (the seed's models fed softmax outputs to a logits loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robust.attacks.fgsm import fgsm
from robust.attacks.pgd import bim
from robust.errors import ConfigError

GUIDED_RETRAINING = ("bim_l2", "bim_l1", "fgsm_linf")
PRESETS = ("guided_retraining",)


@dataclass(frozen=True)
class AdversarialSet:
    """Adversarial inputs with their provenance.

    Attributes:
        x: (M, C, H, W) float32 in [0, 1].
        y: (M,) int64 true labels of the source inputs.
        index: (M,) int64 positions of the source inputs in the attacked split.
        attack: (M,) int64 codes into ``names``.
        names: the attack of each code.
    """

    x: Tensor
    y: Tensor
    index: Tensor
    attack: Tensor
    names: tuple[str, ...]

    def tensors(self) -> dict[str, Tensor]:
        """The tensors an attack run saves as ``adversarial/<split>.safetensors``."""
        return {"x": self.x, "y": self.y, "index": self.index, "attack": self.attack}


def guided_retraining(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    n_adv: int,
    *,
    eps: float = 0.05,
    seed: int = 0,
    batch_size: int | None = None,
) -> AdversarialSet:
    """Seed 000's mix of L2-BIM, L1-BIM and L∞-FGSM over ``n_adv`` drawn inputs.

    Args:
        model: classifier returning logits.
        x: (N, C, H, W) float in [0, 1]; y: (N,) true labels.
        n_adv: how many inputs to attack, 1..N (the seed used the test-set size).
        eps: budget of all three attacks.
        seed: seed of the draw.
        batch_size: inputs per forward/backward pass.
    """
    if isinstance(n_adv, bool) or not isinstance(n_adv, int) or not 1 <= n_adv <= len(x):
        raise ConfigError(
            f"n_adv must be an integer in 1..{len(x)} (the split's size), but got {n_adv=}"
        )
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(x), generator=generator)[:n_adv]
    thirds = torch.tensor_split(index, 3)
    step = 0.2 * eps
    parts = [
        bim(model, x[thirds[0]], y[thirds[0]], eps, 10, step, "2", batch_size=batch_size),
        bim(model, x[thirds[1]], y[thirds[1]], eps, 10, step, "1", batch_size=batch_size),
        fgsm(model, x[thirds[2]], y[thirds[2]], eps, "inf", batch_size=batch_size),
    ]
    attack = torch.cat([torch.full((len(t),), k, dtype=torch.int64) for k, t in enumerate(thirds)])
    return AdversarialSet(torch.cat(parts), y[index], index, attack, GUIDED_RETRAINING)
