"""ε-curves (robust/evaluation/curves.py): ε = 0 is clean accuracy, each point is the attack
at that budget (the worst case over several), counts and intervals, the figure."""

from __future__ import annotations

import pytest
import torch

from robust.errors import ConfigError, DataError
from robust.evaluation import Adaptive, eps_curve, plot_eps_curve, wilson
from robust.models import predict
from tests.nets import Rounded


def _accuracy(model, x, y) -> float:
    return int((predict(model, x).argmax(1) == y).sum()) / len(y)


@pytest.fixture(scope="module")
def inputs(digits):
    return digits.test.x[:60], digits.test.y[:60]


def test_points_are_the_attack_at_each_budget_from_clean_accuracy(trained, inputs):
    x, y = inputs
    curve = eps_curve(
        {"m": trained}, x, y, lambda e: {"a": Adaptive("apgd-ce", e, steps=5)}, [0.3, 0.1]
    )
    assert list(curve["eps"]) == [0.0, 0.1, 0.3] and set(curve["n"]) == {60}
    assert curve["accuracy"].iloc[0] == _accuracy(trained, x, y)
    for e, acc in zip(curve["eps"][1:], curve["accuracy"][1:], strict=True):
        assert acc == _accuracy(trained, Adaptive("apgd-ce", e, steps=5).craft(trained, x, y), y)
    assert curve["accuracy"].is_monotonic_decreasing and curve["accuracy"].iloc[-1] < 0.2
    low, high = wilson(curve["correct"].to_numpy(), 60)
    assert (curve["ci_low"] == low).all() and (curve["ci_high"] == high).all()
    assert (curve["correct"] == (curve["accuracy"] * 60).round()).all()


def test_several_attacks_give_their_worst_case(trained, inputs):
    x, y = inputs
    both = eps_curve(
        {"m": trained}, x, y,
        lambda e: {"f": Adaptive("fgsm", e), "p": Adaptive("pgd", e, steps=5)}, [0.1],
    )  # fmt: skip
    fgsm = eps_curve({"m": trained}, x, y, lambda e: {"f": Adaptive("fgsm", e)}, [0.1])
    assert both["accuracy"].iloc[1] <= fgsm["accuracy"].iloc[1]


def test_a_masked_gradient_keeps_its_curve_up(trained, inputs):
    """The rounded model defeats gradient attacks: its curve stays near clean accuracy where
    the plain model's falls (what the masking checks then flag)."""
    x, y = inputs
    models = {"plain": trained, "rounded": Rounded(trained).eval()}  # eval: restoring its
    # mode must not put the shared trained model in train mode
    curve = eps_curve(models, x, y, lambda e: {"a": Adaptive("apgd-ce", e, steps=5)}, [0.1])
    at = curve[curve["eps"] == 0.1].set_index("model")["accuracy"]
    assert at["rounded"] > at["plain"] + 0.2


def test_the_figure_and_bad_input(tmp_path, trained, inputs):
    x, y = inputs
    curve = eps_curve({"m": trained}, x, y, lambda e: {"a": Adaptive("fgsm", e)}, [0.2])
    path = plot_eps_curve(curve, tmp_path / "c" / "curve.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DataError, match="non-empty frame"):
        plot_eps_curve(curve.iloc[:0], tmp_path / "x.png")
    with pytest.raises(ConfigError, match="at least one budget"):
        eps_curve({"m": trained}, x, y, lambda e: {}, [])
    with pytest.raises(ConfigError, match="at least 0"):
        eps_curve({"m": trained}, x, y, lambda e: {}, [-0.1])
    assert torch.equal(x, inputs[0])
