"""Tests of robust/models/layers.py: Keras-like building blocks."""

import pytest
import torch

from robust.errors import ConfigError
from robust.models.layers import FlattenHWC, SequentialBuilder, ZooModel


def test_flatten_is_channels_last_like_keras() -> None:
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    expected = x.permute(0, 2, 3, 1).reshape(2, -1)
    assert torch.equal(FlattenHWC()(x), expected)
    # Channel varies fastest: the first three features are pixel (0, 0) of channels 0, 1, 2.
    assert FlattenHWC()(x)[0, :3].tolist() == [x[0, 0, 0, 0], x[0, 1, 0, 0], x[0, 2, 0, 0]]


def test_builder_names_layers_and_tracks_shapes() -> None:
    b = SequentialBuilder("tiny", (2, 9, 7))
    model = b.conv(4).pool().conv(5, padding="valid").flatten().dense(6).dropout(0.5)
    model = model.build(3, last_hidden="fc1")
    assert list(dict(model.named_children())) == [
        "conv1",
        "pool1",
        "conv2",
        "flatten",
        "fc1",
        "drop1",
        "logits",
    ]
    # 9x7 → same conv 9x7 → pool 4x3 (floored) → valid conv 2x1 → 5 channels → 10 features
    assert model.fc1.linear.in_features == 10
    assert model(torch.rand(2, 2, 9, 7)).shape == (2, 3)


def test_zoo_model_rejects_unknown_last_hidden() -> None:
    b = SequentialBuilder("tiny", (1, 4, 4)).flatten().dense(3)
    with pytest.raises(ConfigError, match=r"last_hidden must name one of the layers .*'fc9'"):
        b.build(2, last_hidden="fc9")


def test_zoo_model_is_sequential_with_spec() -> None:
    model = SequentialBuilder("tiny", (1, 4, 4)).flatten().dense(3).build(2, last_hidden="fc1")
    assert isinstance(model, ZooModel)
    assert model.spec == {"architecture": "tiny", "input_shape": (1, 4, 4), "num_classes": 2}
