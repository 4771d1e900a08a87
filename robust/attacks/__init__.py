"""Adversarial attacks: gradient attacks (FGSM, PGD, BIM in L∞/L2/L1; APGD and FAB-T in L∞/L2)
and the score-based Square attack (L∞/L2), and AutoAttack's ensemble of them, written in
plain PyTorch.

Every attack is a function ``attack(model, x, y, eps, ...) -> x_adv`` that checks its arguments,
runs the model in eval mode (restoring its mode), never modifies ``x`` nor any parameter's
``.grad``, and returns a tensor within ε of ``x`` and in [0, 1]. :class:`AttackSpec` names one
attack and its settings (DGN generators included) and crafts it with one call;
:func:`default_eps` gives a dataset's default budget.
"""

from robust.attacks._norms import NORMS, check_eps, check_norm, lp, max_distance
from robust.attacks.apgd import apgd
from robust.attacks.autoattack import AutoAttackResult, autoattack, is_randomised
from robust.attacks.fab import fab
from robust.attacks.fgsm import fgsm
from robust.attacks.pgd import bim, pgd
from robust.attacks.presets import PRESETS, AdversarialSet, guided_retraining
from robust.attacks.sets import craft_set, spec_name
from robust.attacks.spec import EPS, METHODS, AttackSpec, default_eps
from robust.attacks.square import square

__all__ = [
    "EPS",
    "METHODS",
    "NORMS",
    "PRESETS",
    "AdversarialSet",
    "AttackSpec",
    "AutoAttackResult",
    "apgd",
    "autoattack",
    "bim",
    "check_eps",
    "check_norm",
    "craft_set",
    "default_eps",
    "fab",
    "fgsm",
    "guided_retraining",
    "is_randomised",
    "lp",
    "max_distance",
    "pgd",
    "spec_name",
    "square",
]
