"""The gradient-masking checks (robust/evaluation/masking.py), in L∞ and L2: a plain trained
model raises no flag; the same model behind an input rounding (a masked gradient, Athalye et
al. 2018's "shattered gradients") raises the ones that should fire."""

from __future__ import annotations

import pytest

from robust.errors import ConfigError
from robust.evaluation import masking_checks
from tests.nets import Rounded


@pytest.fixture(scope="module")
def inputs(digits):
    return digits.test.x[:200], digits.test.y[:200]


def _flags(checks) -> dict[str, bool]:
    return {c.name: c.flagged for c in checks}


def test_a_plain_model_raises_no_flag(trained, inputs):
    checks = masking_checks(trained, *inputs, 0.12)
    assert [c.name for c in checks] == [
        "unbounded", "not_converged", "black_box_stronger", "zero_gradient",
    ]  # fmt: skip
    assert not any(_flags(checks).values()), [c.message for c in checks]
    by_name = {c.name: c for c in checks}
    assert by_name["unbounded"].value <= 0.05  # ε = 1 breaks every input
    assert by_name["zero_gradient"].value == 0
    assert all("\n" not in c.message for c in checks)


def test_a_rounded_input_is_flagged(trained, inputs):
    checks = masking_checks(Rounded(trained).eval(), *inputs, 0.12)
    flags = _flags(checks)
    assert flags["unbounded"] and flags["black_box_stronger"] and flags["zero_gradient"]
    by_name = {c.name: c for c in checks}
    assert by_name["zero_gradient"].value == 1.0
    assert "masked" in by_name["zero_gradient"].message
    assert by_name["black_box_stronger"].value > by_name["black_box_stronger"].threshold


def test_l2_runs_every_check_and_flags_the_rounded_input(trained, inputs):
    """In L2 too: the plain model raises no flag, and Square (its L2 version) breaks the rounded
    model where APGD cannot (measured at ε 0.6, 300 queries: Square leaves 68.3 % of the plain
    model's inputs and 51.7 % of the rounded one's, APGD 58.3 % and 93.3 %)."""
    x, y = inputs[0][:60], inputs[1][:60]
    plain = masking_checks(trained, x, y, 0.6, "2", steps=10, more=2, n_queries=300)
    assert [c.name for c in plain] == [
        "unbounded", "not_converged", "black_box_stronger", "zero_gradient",
    ]  # fmt: skip
    assert not any(_flags(plain).values()), [c.message for c in plain]
    assert plain[0].message.startswith("with ε = 8 (the whole box)")  # √64
    rounded = masking_checks(Rounded(trained).eval(), x, y, 0.6, "2", steps=10, more=2,
                             n_queries=300)  # fmt: skip
    flags = _flags(rounded)
    assert flags["black_box_stronger"] and flags["unbounded"] and flags["zero_gradient"]
    assert rounded[2].message.startswith("Square (300 queries): ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"norm": "1"}, "norm must be inf or 2 for the masking checks, but got norm='1'"),
        ({"margin": 1.5}, "margin must be in [0, 1], but got margin=1.5"),
        ({"more": 1}, "more must be an integer of at least 2, but got more=1"),
    ],
)
def test_bad_settings_are_one_line(trained, inputs, kwargs, message):
    with pytest.raises(ConfigError) as e:
        masking_checks(trained, inputs[0][:4], inputs[1][:4], 0.1, **kwargs)
    assert str(e.value) == message
