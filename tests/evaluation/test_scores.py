"""Summaries and histograms of guidance scores (robust/evaluation/scores.py)."""

from __future__ import annotations

import numpy as np
import pytest

from robust.errors import DataError
from robust.evaluation import plot_score_histogram, score_summary


def test_summary_of_two_parts_by_hand():
    s = score_summary({"clean": np.array([1.0, 3.0]), "adversarial": np.array([5.0, 7.0])})
    assert s == {
        "mean": 4.0,
        "std": pytest.approx(np.sqrt(5.0)),
        "min": 1.0,
        "max": 7.0,
        "median": 4.0,
        "clean_mean": 2.0,
        "adversarial_mean": 6.0,
    }


def test_infinite_scores_are_counted_not_averaged():
    s = score_summary({"clean": np.array([0.0, 2.0]), "adversarial": np.array([np.inf, 4.0])})
    assert s["n_inf"] == 1 and s["mean"] == 2.0 and s["max"] == 4.0
    assert s["adversarial_mean"] == 4.0
    only_inf = score_summary({"adversarial": np.array([np.inf, -np.inf])})
    assert only_inf == {"n_inf": 2}


def test_one_part_has_no_part_means():
    assert set(score_summary({"adversarial": np.arange(3.0)})) == {
        "mean",
        "std",
        "min",
        "max",
        "median",
    }


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        pytest.param({}, "parts must map at least one name", id="empty"),
        pytest.param({"clean": np.zeros((2, 2))}, "to a 1-D score array", id="2d"),
        pytest.param({"clean": np.array([np.nan])}, "scores must not be NaN", id="nan"),
    ],
)
def test_malformed_scores_are_refused(parts, message):
    with pytest.raises(DataError, match=message):
        score_summary(parts)


def test_histogram_is_a_png(tmp_path):
    parts = {"clean": np.array([0.1, 0.2, np.inf]), "adversarial": np.array([0.5, 0.7])}
    path = plot_score_histogram(parts, "dsa", tmp_path / "h" / "dsa.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = plot_score_histogram({"adversarial": np.zeros(0)}, "nc", tmp_path / "nc.png")
    assert empty.stat().st_size > 0
