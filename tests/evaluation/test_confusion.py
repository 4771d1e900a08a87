"""Tests of robust/evaluation/confusion.py."""

import csv

import matplotlib
import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix

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


def test_many_classes_from_predictions(tmp_path) -> None:
    """25 classes from real (true, predicted) labels: the CSV holds exactly sklearn's
    confusion matrix of them, and the PNG is a valid image scaled up for the 25 classes."""
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 25, 2000)
    y_pred = np.where(rng.random(2000) < 0.7, y_true, rng.integers(0, 25, 2000))
    confusion = confusion_matrix(y_true, y_pred, labels=range(25))
    names = [f"class {i}" for i in range(25)]

    path = confusion_csv(confusion, names, tmp_path / "c.csv")
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header == ["true\\predicted", *names]
    assert [row[0] for row in rows] == names
    written = np.array([[int(v) for v in row[1:]] for row in rows])
    np.testing.assert_array_equal(written, confusion_matrix(y_true, y_pred))
    assert written.sum() == 2000 and np.trace(written) == (y_true == y_pred).sum()

    path = plot_confusion(confusion, names, tmp_path / "c.png")
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        image.verify()  # a complete, uncorrupted PNG
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) >= 0.45 * 25 * 100  # grows with the classes (400 px for 3)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
        assert len(colours) > 100  # a shaded, annotated heat map, not a blank canvas


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
