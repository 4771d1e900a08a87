"""Target-model zoo (seed architectures), layer activations and traces, batched prediction,
and save/load without pickle.

Every zoo model outputs **logits** (no softmax layer; the seed models ended in softmax and
their attacks then took the wrong gradients). See :mod:`robust.models.zoo`.
"""

from robust.models.activations import LAST_HIDDEN, activations
from robust.models.io import load, save
from robust.models.layers import ZooModel
from robust.models.predict import predict
from robust.models.traces import Traces, traces
from robust.models.zoo import MODELS, build, default_model, for_dataset, rebuild

__all__ = [
    "LAST_HIDDEN",
    "MODELS",
    "Traces",
    "ZooModel",
    "activations",
    "build",
    "default_model",
    "for_dataset",
    "load",
    "predict",
    "rebuild",
    "save",
    "traces",
]
