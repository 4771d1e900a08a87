"""DGN generators (seed 004, DeepCustom): per-class convolutional autoencoders trained with
custom losses, generating adversarial inputs with one forward pass and ε-clipping.

Example:
    >>> gens = dgn.train(model, x_train, y_train, loss="nce", eps=0.3, epochs=30)
    >>> x_adv = gens.generate(x_test, y_test)            # or route="prediction", model=model

Training sees the deployed, ε-clipped output through a straight-through clamp by default
(``clip``; the seed's ``clip="generation"`` trained on the raw output), nce's cross-entropy is
capped (``p_min``; the seed's ``p_min=0`` is unbounded); the susp loss's hit spectra are over
each class's inputs and random-sign ±ε copies of them (``spectrum_inputs="noise"``: failing
runs without an attack oracle; ``fgsm`` uses FGSM copies, the seed's ``clean`` none).
"""

from robust.attacks.dgn._architectures import ARCHITECTURES, CAE, auto_architecture, build
from robust.attacks.dgn._defaults import Schedule, schedule_for
from robust.attacks.dgn._generators import (
    CLIPS,
    ROUTES,
    SPECTRUM_INPUTS,
    Generators,
    eps_clip,
    load,
    save,
    tanh_clip,
    train,
    train_further,
    train_view,
)
from robust.attacks.dgn._losses import LOSSES, LossContext, LossSpec, register_loss
from robust.attacks.dgn._properties import PROPERTIES
from robust.attacks.dgn._settings import TRAINING, WEIGHTS, resolve_settings, train_options

__all__ = [
    "ARCHITECTURES",
    "CAE",
    "CLIPS",
    "LOSSES",
    "PROPERTIES",
    "ROUTES",
    "SPECTRUM_INPUTS",
    "TRAINING",
    "WEIGHTS",
    "Generators",
    "LossContext",
    "LossSpec",
    "Schedule",
    "auto_architecture",
    "build",
    "eps_clip",
    "load",
    "register_loss",
    "resolve_settings",
    "save",
    "schedule_for",
    "tanh_clip",
    "train",
    "train_further",
    "train_options",
    "train_view",
]
