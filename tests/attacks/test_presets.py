"""Seed 000's adversarial mix (robust/attacks/presets.py): L2-BIM, L1-BIM and L∞-FGSM over
thirds of a seeded draw of distinct inputs."""

from __future__ import annotations

import re

import pytest
import torch

from robust.attacks import PRESETS, bim, fgsm, guided_retraining, lp
from robust.errors import ConfigError


@pytest.fixture(scope="module")
def xy(digits):
    return digits.test.x[:31], digits.test.y[:31]


@pytest.mark.parametrize("eps", [None, 0.1])
def test_the_mix_is_the_three_attacks_on_thirds_of_the_draw(trained, xy, eps):
    """The first third L2-BIM, the second L1-BIM (10 steps of 0.2·ε from x, foolbox's
    defaults), the last L∞-FGSM, all at ε (0.05 by default); labels are the true ones."""
    x, y = xy
    kwargs = {} if eps is None else {"eps": eps}
    eps = 0.05 if eps is None else eps
    adv = guided_retraining(trained, x, y, 20, seed=4, **kwargs)
    assert PRESETS == ("guided_retraining",)
    assert adv.names == ("bim_l2", "bim_l1", "fgsm_linf")
    assert adv.attack.dtype == adv.index.dtype == torch.int64
    assert adv.attack.tolist() == [0] * 7 + [1] * 7 + [2] * 6
    assert torch.equal(adv.y, y[adv.index])
    parts = [adv.index[adv.attack == code] for code in range(3)]
    want = [
        bim(trained, x[parts[0]], y[parts[0]], eps, 10, 0.2 * eps, "2"),
        bim(trained, x[parts[1]], y[parts[1]], eps, 10, 0.2 * eps, "1"),
        fgsm(trained, x[parts[2]], y[parts[2]], eps, "inf"),
    ]
    for code, (norm, expected) in enumerate(zip(("2", "1", "inf"), want, strict=True)):
        got = adv.x[adv.attack == code]
        assert torch.equal(got, expected)
        assert torch.all(lp(got - x[parts[code]], norm) <= eps + 1e-6)
        assert torch.all(lp(got - x[parts[code]], norm) > 0)  # every input is attacked
    assert adv.tensors().keys() == {"x", "y", "index", "attack"}
    assert all(adv.tensors()[k] is getattr(adv, k) for k in adv.tensors())


def test_the_draw_is_seeded_and_without_replacement(trained, xy):
    x, y = xy
    a = guided_retraining(trained, x, y, 5, seed=1)
    assert torch.equal(a.index, guided_retraining(trained, x, y, 5, seed=1).index)
    assert len(set(a.index.tolist())) == 5 and a.index.min() >= 0 and a.index.max() < 31
    assert not torch.equal(a.index, guided_retraining(trained, x, y, 5, seed=2).index)
    assert not torch.equal(a.index, guided_retraining(trained, x, y, 5).index)  # seed 0
    every = guided_retraining(trained, x, y, 31, seed=1)
    assert sorted(every.index.tolist()) == list(range(31))


def test_batch_size_bounds_every_pass(trained, xy, batch_sizes):
    x, y = xy
    with batch_sizes(trained) as sizes:
        guided_retraining(trained, x, y, 31, batch_size=4)
    assert sizes and max(sizes) <= 4


@pytest.mark.parametrize("n_adv", [0, 32, True, 3.0, None])
def test_n_adv_must_be_a_count_within_the_split(trained, xy, n_adv):
    x, y = xy
    message = r"^n_adv must be an integer in 1\.\.31 \(the split's size\), but got "
    with pytest.raises(ConfigError, match=message + re.escape(f"n_adv={n_adv!r}") + "$"):
        guided_retraining(trained, x, y, n_adv)


def test_n_adv_limits_are_allowed(trained, xy):
    x, y = xy
    assert len(guided_retraining(trained, x, y, 1).x) == 1
    assert len(guided_retraining(trained, x, y, 31).x) == 31
