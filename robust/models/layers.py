"""Building blocks of the zoo: Keras-like layers, Keras initialisation and the ``ZooModel`` class.

Every zoo model is a :class:`ZooModel`, an ``nn.Sequential`` of named layers. One named child
stands for one Keras layer: ``conv1`` is ``Conv2d + ReLU`` and ``fc2`` is ``Linear + ReLU``
(Keras ``Dense(activation="relu")``), so hooking ``fc2`` yields the post-ReLU output that the
seed code called that layer's activations; ``fc2.linear`` is the pre-activation.

Keras details ported on purpose:

* ``glorot_uniform`` weights and zero biases (torch's default initialisation differs);
* 3×3 ``padding="same"`` or ``"valid"`` convolutions, 2×2 max-pooling that floors odd sizes;
* channels-last flattening (:class:`FlattenHWC`), so the first dense layer's weights are in
  Keras order and weights converted from the seeds' ``.h5`` files load unchanged (after
  transposing kernels).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from numbers import Integral
from typing import Any

from torch import Tensor, nn

from robust.errors import ConfigError


class FlattenHWC(nn.Module):
    """Flatten ``(N, C, H, W)`` to ``(N, H·W·C)`` in channels-last order, like Keras' Flatten."""

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) → (N, H·W·C); other ranks flatten all but the batch dimension."""
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        return x.flatten(1)


class ZooModel(nn.Sequential):
    """An ``nn.Sequential`` of named layers that outputs logits and knows its own spec.

    Attributes:
        spec: ``{"architecture", "input_shape", "num_classes"}`` (plus ``"dataset"`` and
            ``"classes"`` once saved or loaded); enough to rebuild the model with
            :func:`robust.models.build`.
        last_hidden: name of the last hidden layer (a child of this module), the layer the
            seeds used for surprise adequacy and neuron coverage.
    """

    def __init__(
        self, layers: OrderedDict[str, nn.Module], *, spec: dict[str, Any], last_hidden: str
    ) -> None:
        super().__init__(layers)
        if last_hidden not in layers:
            raise ConfigError(
                f"last_hidden must name one of the layers {list(layers)}, but got {last_hidden=}"
            )
        self.spec = dict(spec)
        self.last_hidden = last_hidden


def glorot_init(model: nn.Module) -> nn.Module:
    """Keras defaults: ``glorot_uniform`` weights, zero biases for every Conv2d and Linear."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Return ``input_shape`` as a ``(C, H, W)`` tuple of positive ints, or raise ConfigError."""
    if (
        not isinstance(input_shape, Sequence)
        or len(input_shape) != 3
        or not all(isinstance(d, Integral) and not isinstance(d, bool) for d in input_shape)
        or min(input_shape) < 1
    ):
        raise ConfigError(
            f"input_shape must be three positive integers (C, H, W), but got {input_shape=}"
        )
    c, h, w = (int(d) for d in input_shape)
    return c, h, w


def check_num_classes(num_classes: int) -> int:
    """Return ``num_classes`` if it is an int of at least 2, else raise ConfigError."""
    if not isinstance(num_classes, Integral) or isinstance(num_classes, bool) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer of at least 2, but got {num_classes=}")
    return int(num_classes)


class SequentialBuilder:
    """Stack Keras-like layers with automatic names while tracking the feature shape.

    Computing shapes as layers are added gives every dense layer its input width at
    construction, for any input shape, without Lazy modules or a dry forward pass.

    Example:
        >>> b = SequentialBuilder("tiny", (1, 8, 8))
        >>> model = b.conv(16).pool().flatten().dense(32).build(10, last_hidden="fc1")
        >>> list(model.named_children())[-1][0]
        'logits'
    """

    def __init__(self, architecture: str, input_shape: Sequence[int]) -> None:
        self.architecture = architecture
        self.input_shape = check_input_shape(input_shape)
        self.shape: tuple[int, ...] = self.input_shape
        self.layers: OrderedDict[str, nn.Module] = OrderedDict()
        self._counts: dict[str, int] = {}

    def _name(self, kind: str) -> str:
        self._counts[kind] = self._counts.get(kind, 0) + 1
        return f"{kind}{self._counts[kind]}"

    def _set_spatial(self, name: str, h: int, w: int) -> None:
        if h < 1 or w < 1:
            raise ConfigError(
                f"input_shape must be large enough for {self.architecture} (its feature maps "
                f"shrink to {h}x{w} at {name}), but got input_shape={self.input_shape}"
            )
        self.shape = (self.shape[0], h, w)

    def conv(self, filters: int, padding: str = "same") -> SequentialBuilder:
        """Conv2d(3×3, stride 1, ``same`` or ``valid``) + ReLU, named ``conv<k>``."""
        name = self._name("conv")
        c, h, w = self.shape
        self.layers[name] = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(c, filters, kernel_size=3, padding=1 if padding == "same" else 0),
                relu=nn.ReLU(),
            )
        )
        shrink = 0 if padding == "same" else 2
        self.shape = (filters, h, w)
        self._set_spatial(name, h - shrink, w - shrink)
        return self

    def pool(self) -> SequentialBuilder:
        """MaxPool2d(2×2), flooring odd sizes like Keras ``padding="valid"``, named ``pool<k>``."""
        name = self._name("pool")
        self.layers[name] = nn.MaxPool2d(2)
        _, h, w = self.shape
        self._set_spatial(name, h // 2, w // 2)
        return self

    def dropout(self, p: float) -> SequentialBuilder:
        """Dropout(p) (inverted, as Keras), named ``drop<k>``."""
        self.layers[self._name("drop")] = nn.Dropout(p)
        return self

    def flatten(self) -> SequentialBuilder:
        """Channels-last flatten (:class:`FlattenHWC`), named ``flatten``."""
        self.layers["flatten"] = FlattenHWC()
        n_features = 1
        for d in self.shape:
            n_features *= d
        self.shape = (n_features,)
        return self

    def dense(self, units: int) -> SequentialBuilder:
        """Linear + ReLU, named ``fc<k>``; call after :meth:`flatten`."""
        (n_in,) = self.shape
        self.layers[self._name("fc")] = nn.Sequential(
            OrderedDict(linear=nn.Linear(n_in, units), relu=nn.ReLU())
        )
        self.shape = (units,)
        return self

    def build(self, num_classes: int, *, last_hidden: str) -> ZooModel:
        """Append the output layer ``logits`` (Linear, no softmax) and initialise like Keras."""
        num_classes = check_num_classes(num_classes)
        (n_in,) = self.shape
        self.layers["logits"] = nn.Linear(n_in, num_classes)
        spec = {
            "architecture": self.architecture,
            "input_shape": self.input_shape,
            "num_classes": num_classes,
        }
        return glorot_init(ZooModel(self.layers, spec=spec, last_hidden=last_hidden))
