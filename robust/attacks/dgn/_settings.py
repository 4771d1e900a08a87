"""The attack stage's DGN settings: what ``auto`` stands for, and ``train``'s keyword arguments.

A DGN attack is described by flat settings (``loss``, ``alpha`` … ``gamma``, ``p_min``,
``dgn_epochs``, ``dgn_lr``, ``dgn_batch_size``, ``architecture``, ``k``, ``measure``, ``star``,
``spectrum_inputs``, ``dgn_clip``, ``dgn_split``), as the attack and tune stages take them as
parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robust.attacks.dgn._defaults import schedule_for
from robust.attacks.dgn._generators import DEFAULT_CLIP, DEFAULT_SPECTRUM_INPUTS
from robust.attacks.dgn._losses import LOSSES

WEIGHTS = ("alpha", "beta", "lam", "gamma", "p_min")
"""Loss weights a setting may give (each loss takes some of them)."""
TRAINING = (
    *WEIGHTS, "loss", "dgn_epochs", "dgn_lr", "dgn_batch_size", "dgn_split", "architecture",
    "k", "measure", "star", "spectrum_inputs", "dgn_clip",
)  # fmt: skip
"""Settings that only shape training: generators reused from a run bring their own."""


def resolve_settings(dataset: str, loss: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The loss weights and schedule that ``auto`` (None) stands for in ``given``.

    Returns:
        The loss's weights (its defaults where not given) and ``dgn_epochs``, ``dgn_lr``,
        ``dgn_batch_size`` (the dataset's schedule, :func:`schedule_for`, where not given).

    Raises:
        ConfigError: a weight the loss does not take.
    """
    schedule = schedule_for(dataset, loss)
    weights = LOSSES[loss].resolve({w: given.get(w) for w in WEIGHTS})
    return weights | {
        "dgn_epochs": given.get("dgn_epochs") or schedule.epochs,
        "dgn_lr": given.get("dgn_lr") or schedule.lr,
        "dgn_batch_size": given.get("dgn_batch_size") or schedule.batch_size,
    }


def train_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`robust.attacks.dgn.train`'s keyword arguments from resolved settings (with
    ``eps``): loss, eps, epochs, lr, batch size, architecture, k, measure, star, spectrum
    inputs, clip (``dgn_clip``) and the loss's weights."""
    weights = {w: settings[w] for w in WEIGHTS if settings.get(w) is not None}
    return {
        "loss": settings["loss"],
        "eps": settings["eps"],
        "epochs": settings["dgn_epochs"],
        "lr": settings["dgn_lr"],
        "batch_size": settings["dgn_batch_size"],
        "architecture": settings.get("architecture", "auto"),
        "k": settings.get("k"),
        "measure": settings.get("measure", "tarantula"),
        "star": settings.get("star", 2.0),
        "spectrum_inputs": settings.get("spectrum_inputs", DEFAULT_SPECTRUM_INPUTS),
        "clip": settings.get("dgn_clip", DEFAULT_CLIP),
        **weights,
    }
