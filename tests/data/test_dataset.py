"""Split and Dataset containers (dataset.py)."""

from __future__ import annotations

import pytest
import torch

from robust.data import Dataset, Split
from robust.errors import ConfigError


def _split(n=4, c=1, side=5):
    return Split(torch.rand(n, c, side, side), torch.zeros(n, dtype=torch.int64))


def test_properties_and_repr():
    ds = Dataset("toy", _split(4), _split(2), _split(3), ("a", "b"))
    assert ds.input_shape == (1, 5, 5) and ds.num_classes == 2 and len(ds.val) == 2
    assert repr(ds) == (
        "Dataset(name='toy', train=4, val=2, test=3, input_shape=(1, 5, 5), num_classes=2)"
    )
    assert repr(ds.train) == "Split(x=(4, 1, 5, 5) float32, y=(4,) int64)"
    with pytest.raises(AttributeError):
        ds.name = "other"


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (torch.rand(2, 5, 5), torch.zeros(2, dtype=torch.int64), r"4-D .* shape=\(2, 5, 5\)"),
        (torch.rand(2, 1, 5, 5).double(), torch.zeros(2, dtype=torch.int64), "float32"),
        (torch.rand(2, 1, 5, 5), torch.zeros(2), "int64"),
        (torch.rand(2, 1, 5, 5), torch.zeros(3, dtype=torch.int64), "2 images and 3 labels"),
        (torch.rand(2, 1, 5, 5), [0, 1], "1-D .* type=list"),
    ],
)
def test_split_checks_its_tensors(x, y, match):
    with pytest.raises(ConfigError, match=match):
        Split(x, y)


def test_dataset_needs_one_image_shape():
    with pytest.raises(ConfigError, match="all splits must share one image shape"):
        Dataset("toy", _split(side=5), _split(side=6), _split(side=5), ("a",))
