"""Training target models: the fit loop, adversarial training, Keras-equivalent optimizers,
per-dataset defaults."""

from robust.training.adversarial import (
    EVERY,
    OnlineAttack,
    adversarial_fit,
    dgn_attack,
    fgsm_attack,
    online_attack,
    pgd_attack,
    static_pairs,
)
from robust.training.defaults import TrainConfig, defaults_for
from robust.training.fit import fit
from robust.training.optimizers import OPTIMIZERS, build_optimizer

__all__ = [
    "EVERY",
    "OPTIMIZERS",
    "OnlineAttack",
    "TrainConfig",
    "adversarial_fit",
    "build_optimizer",
    "defaults_for",
    "dgn_attack",
    "fgsm_attack",
    "fit",
    "online_attack",
    "pgd_attack",
    "static_pairs",
]
