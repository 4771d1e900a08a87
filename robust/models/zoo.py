"""The target-model zoo: build an architecture by name, or the default one for a dataset.

Every zoo model outputs **logits**, never probabilities. The seed models (000 and 004) ended
in a softmax layer, so their attacks took gradients of a cross-entropy applied to
probabilities as if they were logits; here attacks and training get the real logits and
callers apply ``softmax`` when they want probabilities.

Names: seed 000's ``gtsrb_cnn``, ``intel_cnn``, ``cifar_cnn``, ``mnist_cnn``, ``fashion_cnn``
(:mod:`robust.models.guided_retraining`), seed 004's ``mnist_5x30`` and ``cifar_keras``
(:mod:`robust.models.deepcustom`) and the embedded default ``digits_cnn``
(:mod:`robust.models.digits`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch

from robust.errors import ConfigError
from robust.models import deepcustom, digits, guided_retraining
from robust.models.layers import ZooModel, check_input_shape, check_num_classes

_ARCHITECTURES: dict[str, Callable[..., ZooModel]] = {
    "gtsrb_cnn": guided_retraining.gtsrb_cnn,
    "intel_cnn": guided_retraining.intel_cnn,
    "cifar_cnn": guided_retraining.cifar_cnn,
    "mnist_cnn": guided_retraining.mnist_cnn,
    "fashion_cnn": guided_retraining.fashion_cnn,
    "mnist_5x30": deepcustom.mnist_5x30,
    "cifar_keras": deepcustom.cifar_keras,
    "digits_cnn": digits.digits_cnn,
}

MODELS: tuple[str, ...] = tuple(_ARCHITECTURES)
"""Names accepted by :func:`build`."""

_DEFAULT_MODELS: dict[str, str] = {
    "digits": "digits_cnn",
    "mnist": "mnist_cnn",
    "fashion": "fashion_cnn",
    "cifar10": "cifar_cnn",
    "gtsrb": "gtsrb_cnn",
    "intel": "intel_cnn",
}


class DatasetLike(Protocol):
    """What :func:`for_dataset` needs of a ``robust.data.Dataset``."""

    @property
    def name(self) -> str:
        """Dataset name, a key of the default-model table."""
        ...

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input."""
        ...

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        ...


def build(
    name: str,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    *,
    seed: int | None = None,
) -> ZooModel:
    """Build a zoo model with fresh Keras-initialised weights.

    Args:
        name: one of :data:`MODELS`.
        input_shape: (C, H, W) of the inputs; ``None`` means the architecture's native shape.
        num_classes: number of output logits; ``None`` means the architecture's native count.
        seed: the weights are drawn from ``torch.manual_seed(seed)``: the same on any worker
            and in any process, and torch's global random state is left as it was. None draws
            from the global state (seed torch first to repeat).

    Returns:
        A :class:`~robust.models.layers.ZooModel` on the CPU in training mode, mapping
        (N, C, H, W) float32 in [0, 1] to (N, num_classes) logits, with ``.spec`` and
        ``.last_hidden``.

    Raises:
        ConfigError: unknown name, malformed shape or class count, or an input too small for
            the architecture's pooling.

    Example:
        >>> model = build("mnist_cnn", input_shape=(1, 8, 8), num_classes=10)
        >>> model.last_hidden
        'fc1'
    """
    if name not in _ARCHITECTURES:
        raise ConfigError(f"model name must be one of {', '.join(MODELS)}, but got {name=}")
    kwargs: dict[str, object] = {}
    if input_shape is not None:
        kwargs["input_shape"] = check_input_shape(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = check_num_classes(num_classes)
    if seed is None:
        return _ARCHITECTURES[name](**kwargs)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be an int >= 0 or None, but got seed={seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _ARCHITECTURES[name](**kwargs)


def default_model(dataset: str) -> str:
    """Name of the default architecture for a dataset (e.g. ``"digits"`` → ``"digits_cnn"``).

    Raises:
        ConfigError: unknown dataset name.
    """
    if dataset not in _DEFAULT_MODELS:
        raise ConfigError(
            f"dataset must be one of {', '.join(_DEFAULT_MODELS)}, but got {dataset=}"
        )
    return _DEFAULT_MODELS[dataset]


def for_dataset(ds: DatasetLike, *, seed: int | None = None) -> ZooModel:
    """The dataset's default model, sized to ``ds.input_shape`` and ``ds.num_classes``.

    Args:
        ds: a ``robust.data.Dataset`` (anything with ``name``, ``input_shape``,
            ``num_classes``).
        seed: as :func:`build` (pass one: the same weights on every worker).

    Returns:
        A freshly initialised :class:`~robust.models.layers.ZooModel`.
    """
    return build(default_model(ds.name), tuple(ds.input_shape), ds.num_classes, seed=seed)


def rebuild(model: ZooModel, *, seed: int | None = None) -> ZooModel:
    """A freshly initialised model of ``model``'s architecture, input shape and classes
    (``seed`` as :func:`build`), e.g. to train from scratch what an earlier run trained."""
    spec = model.spec
    return build(spec["architecture"], spec["input_shape"], spec["num_classes"], seed=seed)
