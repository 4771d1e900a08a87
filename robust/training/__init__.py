"""Training target models: the fit loop, adversarial training (the α-mix, static or online, and
TRADES), Keras-equivalent optimizers, per-dataset defaults."""

from robust.training.adversarial import (
    EVERY,
    OBJECTIVES,
    OnlineAttack,
    adversarial_fit,
    dgn_attack,
    fgsm_attack,
    online_attack,
    pgd_attack,
    static_pairs,
    trades_attack,
)
from robust.training.defaults import TrainConfig, defaults_for
from robust.training.fit import fit
from robust.training.optimizers import OPTIMIZERS, build_optimizer
from robust.training.trades import trades_kl, trades_loss, trades_pgd

__all__ = [
    "EVERY",
    "OBJECTIVES",
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
    "trades_attack",
    "trades_kl",
    "trades_loss",
    "trades_pgd",
]
