"""Adversarial attacks: gradient attacks (FGSM, PGD, BIM in L∞/L2/L1), written in plain PyTorch.

Every attack is a function ``attack(model, x, y, eps, ...) -> x_adv`` that checks its arguments,
runs the model in eval mode (restoring its mode), never modifies ``x`` nor any parameter's
``.grad``, and returns a tensor within ε of ``x`` and in [0, 1].
"""

from robust.attacks._norms import NORMS, lp
from robust.attacks.fgsm import fgsm
from robust.attacks.pgd import bim, pgd
from robust.attacks.presets import PRESETS, AdversarialSet, guided_retraining

__all__ = ["NORMS", "PRESETS", "AdversarialSet", "bim", "fgsm", "guided_retraining", "lp", "pgd"]
