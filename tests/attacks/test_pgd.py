"""robust/attacks/pgd.py and fgsm.py: exactness against ART and against each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentPyTorch
from art.estimators.classification import PyTorchClassifier
from torch import nn

from robust.attacks import _common, bim, fgsm, lp, pgd


def _art(model, shape, *, as_attacked=True):
    """ART on the model as our attacks run it on the CPU (a channels-last copy, see
    ``_common.fast_copy``), so both sum the convolutions in the same order."""
    if as_attacked:
        model = _common.fast_copy(model, torch.device("cpu"))[0]
    return PyTorchClassifier(
        model,
        loss=nn.CrossEntropyLoss(),
        input_shape=shape,
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_linf_pgd_equals_art(trained, digits, eps):
    x, y = digits.test.x[:200], digits.test.y[:200]
    ours = pgd(trained, x, y, eps, steps=10, step_size=eps / 4, random_start=False, keep="last")
    attack = ProjectedGradientDescentPyTorch(
        _art(trained, tuple(x.shape[1:])),
        norm=np.inf,
        eps=eps,
        eps_step=eps / 4,
        max_iter=10,
        num_random_init=0,
        batch_size=64,
        verbose=False,
    )
    theirs = torch.from_numpy(attack.generate(x.numpy(), y.numpy()))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)  # the same images
    assert _accuracy(trained, ours, y) == _accuracy(trained, theirs, y)


def test_linf_pgd_of_the_fast_copy_equals_art_on_the_model_as_given(trained, digits):
    """The channels-last copy changes only rounding, which L∞ sign steps do not see."""
    x, y = digits.test.x[:200], digits.test.y[:200]
    ours = pgd(trained, x, y, 0.1, steps=10, step_size=0.025, random_start=False, keep="last")
    attack = ProjectedGradientDescentPyTorch(
        _art(trained, tuple(x.shape[1:]), as_attacked=False),
        norm=np.inf,
        eps=0.1,
        eps_step=0.025,
        max_iter=10,
        num_random_init=0,
        batch_size=64,
        verbose=False,
    )
    theirs = torch.from_numpy(attack.generate(x.numpy(), y.numpy()))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert _accuracy(trained, ours, y) == _accuracy(trained, theirs, y)


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_fgsm_equals_art(trained, digits, norm):
    x, y = digits.test.x[:200], digits.test.y[:200]
    eps = 0.1 if norm == "inf" else 0.5
    ours = fgsm(trained, x, y, eps, norm)
    attack = FastGradientMethod(
        _art(trained, tuple(x.shape[1:])),
        norm=np.inf if norm == "inf" else 2,
        eps=eps,
        batch_size=64,
    )
    theirs = torch.from_numpy(attack.generate(x.numpy(), y.numpy()))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert _accuracy(trained, ours, y) == _accuracy(trained, theirs, y)


@pytest.mark.parametrize("norm", ["inf", "2", "1"])
def test_fgsm_is_one_pgd_step_of_size_eps(trained, digits, norm):
    x, y = digits.test.x[:100], digits.test.y[:100]
    eps = {"inf": 0.1, "2": 0.5, "1": 2.0}[norm]
    one_step = pgd(
        trained, x, y, eps, steps=1, step_size=eps, norm=norm, random_start=False, keep="last"
    )
    torch.testing.assert_close(fgsm(trained, x, y, eps, norm), one_step, rtol=0, atol=1e-6)


def _loss(model, x, y):
    with torch.no_grad():
        return nn.functional.cross_entropy(model(x), y, reduction="none")


def test_more_restarts_are_never_worse_per_sample(trained, digits):
    x, y = digits.test.x[:150], digits.test.y[:150]
    one = pgd(trained, x, y, 0.05, steps=3, step_size=0.02, restarts=1, seed=5)
    four = pgd(trained, x, y, 0.05, steps=3, step_size=0.02, restarts=4, seed=5)
    fooled1 = trained(one).argmax(1) != y
    fooled4 = trained(four).argmax(1) != y
    assert torch.all(fooled4 | ~fooled1)  # every sample fooled with 1 restart stays fooled
    both_not = ~fooled1 & ~fooled4
    assert torch.all(_loss(trained, four, y)[both_not] >= _loss(trained, one, y)[both_not] - 1e-6)
    assert fooled4.sum() >= fooled1.sum()


def test_pgd_reaches_the_boundary_and_beats_fgsm(trained, digits):
    x, y = digits.test.x, digits.test.y
    adv = pgd(trained, x, y, 0.1, steps=20, step_size=0.01, random_start=False, keep="last")
    assert lp(adv - x, "inf").max() == pytest.approx(0.1, abs=1e-6)
    assert _accuracy(trained, adv, y) <= _accuracy(trained, fgsm(trained, x, y, 0.1), y)


def test_bim_defaults_are_ten_steps_of_a_quarter_eps_from_the_clean_input(trained, digits):
    """bim(model, x, y, eps) is PGD from x, 10 steps of 2.5·ε/10, one run, the last iterate
    (Kurakin et al.; foolbox's BIM)."""
    x, y = digits.test.x[:16], digits.test.y[:16]
    want = pgd(trained, x, y, 0.1, 10, 0.025, "inf", random_start=False, keep="last")
    assert torch.equal(bim(trained, x, y, 0.1), want)
    assert not torch.equal(bim(trained, x, y, 0.1, 9), want)
