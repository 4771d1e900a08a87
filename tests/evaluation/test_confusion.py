"""Tests of robust/evaluation/confusion.py."""

import csv

import matplotlib
import numpy as np
import pytest
from PIL import Image

from robust.errors import DataError
from robust.evaluation import confusion_csv, plot_confusion


@pytest.fixture
def confusion() -> np.ndarray:
    return np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]], dtype=np.int64)


def test_plot_writes_a_png(confusion, tmp_path) -> None:
    backend = matplotlib.get_backend()
    path = plot_confusion(confusion, ["cat", "dog", "eel"], tmp_path / "plots" / "c.png")
    assert path == tmp_path / "plots" / "c.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) >= 300
    assert matplotlib.get_backend() == backend


def test_plot_many_classes(tmp_path) -> None:
    confusion = np.random.default_rng(0).integers(0, 50, size=(25, 25))
    path = plot_confusion(confusion, [str(i) for i in range(25)], tmp_path / "c.png")
    assert path.stat().st_size > 0


def test_csv(confusion, tmp_path) -> None:
    path = confusion_csv(confusion, ["cat", "dog", "eel"], tmp_path / "c.csv")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["true\\predicted", "cat", "dog", "eel"],
        ["cat", "5", "1", "0"],
        ["dog", "2", "7", "1"],
        ["eel", "0", "0", "9"],
    ]


@pytest.mark.parametrize("write", [plot_confusion, confusion_csv], ids=["png", "csv"])
def test_shape_errors(confusion, tmp_path, write) -> None:
    with pytest.raises(DataError, match=r"square matrix with one class name per row, .*2 class"):
        write(confusion, ["a", "b"], tmp_path / "x")
    with pytest.raises(DataError, match=r"but got shape \(3, 2\)"):
        write(confusion[:, :2], ["a", "b", "c"], tmp_path / "x")
