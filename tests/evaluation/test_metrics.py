"""Tests of robust/evaluation/metrics.py against scikit-learn."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from robust.errors import ConfigError, DataError
from robust.evaluation import classification_metrics, evaluate
from robust.models import build


def sklearn_metrics(y_true, y_pred, num_classes):
    kwargs = {"average": "macro", "zero_division": 0}
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "precision_macro": precision_score(y_true, y_pred, **kwargs),
        "recall_macro": recall_score(y_true, y_pred, **kwargs),
        "f1_macro": f1_score(y_true, y_pred, **kwargs),
        "confusion": confusion_matrix(y_true, y_pred, labels=range(num_classes)),
    }


def assert_matches_sklearn(y_true, y_pred, num_classes) -> None:
    ours = classification_metrics(y_true, y_pred, num_classes)
    expected = sklearn_metrics(np.asarray(y_true), np.asarray(y_pred), num_classes)
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
        assert ours[key] == pytest.approx(expected[key], abs=1e-12), key
    assert ours["confusion"].dtype == np.int64
    np.testing.assert_array_equal(ours["confusion"], expected["confusion"])


def test_hand_computed() -> None:
    m = classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert m["accuracy"] == 0.75
    assert m["precision_macro"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["recall_macro"] == pytest.approx((0.5 + 1) / 2)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["confusion"].tolist() == [[1, 1], [0, 2]]


def test_class_never_predicted_has_precision_zero() -> None:
    y_true = np.array([0, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1])  # class 2 is never predicted
    m = classification_metrics(y_true, y_pred, 3)
    assert m["precision_macro"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert m["recall_macro"] == pytest.approx((1 + 1 + 0) / 3)
    assert_matches_sklearn(y_true, y_pred, 3)


def test_classes_absent_from_both_are_left_out_of_the_macro_average() -> None:
    m = classification_metrics(np.array([0, 1]), np.array([0, 1]), 5)
    assert m["precision_macro"] == m["recall_macro"] == m["f1_macro"] == 1.0
    assert m["confusion"].shape == (5, 5)
    assert_matches_sklearn(np.array([0, 1]), np.array([0, 1]), 5)


def test_accepts_tensors() -> None:
    m = classification_metrics(torch.tensor([0, 1, 2]), torch.tensor([0, 2, 2]), 3)
    assert m["accuracy"] == pytest.approx(2 / 3)


@pytest.mark.filterwarnings("ignore:A single label was found")
@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    num_classes=st.integers(min_value=1, max_value=8),
    n=st.integers(min_value=1, max_value=60),
)
def test_random_labels_match_sklearn(data, num_classes, n) -> None:
    labels = st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)
    y_true = np.array(data.draw(labels), dtype=np.int64)
    y_pred = np.array(data.draw(labels), dtype=np.int64)
    assert_matches_sklearn(y_true, y_pred, num_classes)


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        pytest.param([0, 1], [0], r"same number N ≥ 1 of labels, but got 2 and 1", id="length"),
        pytest.param([], [], r"same number N ≥ 1 of labels, but got 0 and 0", id="empty"),
        pytest.param([0, 3], [0, 1], r"y_true must hold labels in \[0, 3\), .*\[0, 3\]", id="hi"),
        pytest.param([0, 1], [-1, 1], r"y_pred must hold labels in \[0, 3\)", id="negative"),
        pytest.param([0.0, 1.0], [0, 1], r"y_true must be a 1-D array of integer", id="float"),
        pytest.param([[0, 1]], [[0, 1]], r"y_true must be a 1-D array", id="2d"),
    ],
)
def test_data_errors(y_true, y_pred, message) -> None:
    with pytest.raises(DataError, match=message):
        classification_metrics(np.array(y_true), np.array(y_pred), 3)


def test_labels_at_the_limit() -> None:
    assert classification_metrics([2], [2], 3)["accuracy"] == 1.0


def test_num_classes_limit() -> None:
    assert classification_metrics([0], [0], 1)["accuracy"] == 1.0
    with pytest.raises(ConfigError, match=r"num_classes must be .*at least 1, .*num_classes=0"):
        classification_metrics([0], [0], 0)


def test_evaluate_combines_loss_and_metrics() -> None:
    model = build("digits_cnn", num_classes=3)
    split = SimpleNamespace(x=torch.rand(20, 1, 8, 8), y=torch.arange(20) % 3)
    result = evaluate(model, split, 3)
    model.eval()
    with torch.no_grad():
        logits = model(split.x)
    assert result["loss"] == pytest.approx(
        torch.nn.functional.cross_entropy(logits, split.y).item(), rel=1e-5
    )
    expected = classification_metrics(split.y, logits.argmax(1), 3)
    assert result["accuracy"] == expected["accuracy"]
    np.testing.assert_array_equal(result["confusion"], expected["confusion"])
    assert evaluate(model, split)["confusion"].shape == (3, 3)


def test_evaluate_rejects_labels_beyond_the_logits() -> None:
    model = build("digits_cnn", num_classes=3)
    split = SimpleNamespace(x=torch.rand(4, 1, 8, 8), y=torch.tensor([0, 1, 2, 4]))
    with pytest.raises(DataError, match=r"below the model's 3 outputs, .*largest label is 4"):
        evaluate(model, split)
