"""The in-memory dataset: three seeded splits of images in [0, 1] and their integer labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robust.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset.

    Attributes:
        x: (N, C, H, W) float32 images in [0, 1].
        y: (N,) int64 class indices.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or self.x.ndim != 4:
            raise ConfigError(
                f"Split.x must be a 4-D (N, C, H, W) tensor, but got {_describe(self.x)}"
            )
        if self.x.dtype != torch.float32:
            raise ConfigError(f"Split.x must be float32, but got dtype={self.x.dtype}")
        if not isinstance(self.y, torch.Tensor) or self.y.ndim != 1:
            raise ConfigError(f"Split.y must be a 1-D (N,) tensor, but got {_describe(self.y)}")
        if self.y.dtype != torch.int64:
            raise ConfigError(f"Split.y must be int64, but got dtype={self.y.dtype}")
        if len(self.x) != len(self.y):
            raise ConfigError(
                "Split.x and Split.y must hold the same number of samples, "
                f"but got {len(self.x)} images and {len(self.y)} labels"
            )

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split(x={tuple(self.x.shape)} float32, y={tuple(self.y.shape)} int64)"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named dataset with train, validation and test splits.

    Attributes:
        name: registry name, e.g. ``"mnist"``.
        train: the training split.
        val: the validation split.
        test: the test split.
        classes: class names; label ``i`` means ``classes[i]``.

    Example:
        >>> ds = robust.data.load("digits")
        >>> ds.input_shape, ds.num_classes
        ((1, 8, 8), 10)
    """

    name: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        shapes = {tuple(s.x.shape[1:]) for s in (self.train, self.val, self.test)}
        if len(shapes) != 1:
            raise ConfigError(
                f"all splits must share one image shape (C, H, W), but got {sorted(shapes)}"
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape (C, H, W) of one image."""
        c, h, w = self.train.x.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        """The number of classes, ``len(classes)``."""
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes})"
        )


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape={tuple(value.shape)}"
    return f"type={type(value).__name__}"
