"""AutoAttack (robust/attacks/autoattack.py): the ensemble's bookkeeping, torchattacks'
AutoAttack as the oracle (L∞ and L2; the ``rand`` version on a randomised model), and a
gradient-masking model that only the score-based attack breaks."""

from __future__ import annotations

import pytest
import torch
import torchattacks

from robust.attacks import apgd, autoattack, is_randomised, lp
from robust.errors import ConfigError
from tests.nets import Noisy, Rounded, expected_accuracy

EPS = 0.12
EPS_L2 = 0.6
"""The L2 budget of the oracle check: the model keeps 20–80 % (tests/attacks/test_square.py)."""


@pytest.fixture(scope="module")
def inputs(digits):
    return digits.test.x[:200], digits.test.y[:200]


@pytest.fixture(scope="module")
def standard(trained, inputs):
    return autoattack(trained, *inputs, EPS)


@pytest.fixture(scope="module")
def standard_l2(trained, inputs):
    return autoattack(trained, *inputs, EPS_L2, "2")


@pytest.mark.parametrize(
    ("norm", "theirs_norm", "eps", "ours"),
    [("inf", "Linf", EPS, "standard"), ("2", "L2", EPS_L2, "standard_l2")],
    ids=["linf", "l2"],
)
def test_no_weaker_than_torchattacks_autoattack(request, trained, inputs, norm, theirs_norm, eps,
                                                ours):  # fmt: skip
    """Robust accuracy ≤ torchattacks' standard AutoAttack on the same model and inputs,
    within ε and in [0, 1] (measured: L∞ 45.0 % both at ε 0.12, 70.0 % both at 0.08; L2, the
    same four attacks with Square's L2 version, at ε 0.6 ours 49.5 %, theirs 50.0 %)."""
    x, y = inputs
    result = request.getfixturevalue(ours)
    assert result.attacks == ("apgd-ce", "apgd-t", "fab-t", "square")
    theirs = torchattacks.AutoAttack(trained, norm=theirs_norm, eps=eps, n_classes=10, seed=0)(
        x, y
    )
    with torch.no_grad():
        their_acc = (trained(theirs).argmax(1) == y).double().mean().item()
    assert 0.2 <= their_acc <= 0.8
    assert result.robust_accuracy <= their_acc
    assert torch.all(lp(result.x_adv - x, norm) <= eps + 1e-6)
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1


@pytest.mark.parametrize("result", ["standard", "standard_l2"])
def test_each_input_is_counted_once_by_what_broke_it(trained, inputs, result, request):
    x, y = inputs
    standard = request.getfixturevalue(result)
    counts = standard.counts()
    assert list(counts) == ["clean_error", "apgd-ce", "apgd-t", "fab-t", "square", "robust"]
    assert sum(counts.values()) == len(x)
    with torch.no_grad():
        pred_clean = trained(x).argmax(1)
        pred_adv = trained(standard.x_adv).argmax(1)
    code = standard.broken_by
    assert torch.equal(code == -1, pred_clean != y)
    assert (pred_adv[code > 0] != y[code > 0]).double().mean() >= 0.99  # broken: fooled
    # (up to an input right at the boundary, which batches of another size may round back)
    assert torch.all(pred_adv[code == 0] == y[code == 0])
    assert torch.equal(standard.x_adv[code <= 0], x[code <= 0])  # untouched otherwise
    assert standard.robust_accuracy == pytest.approx(counts["robust"] / len(x))


def test_a_masked_gradient_is_broken_by_the_score_based_attack(trained, inputs):
    """Rounding the input zeroes the gradient: the gradient attacks break almost nothing (only
    a lucky random start), Square still breaks inputs, so the ensemble's robust accuracy is
    well below what the gradient attack alone claims."""
    x, y = inputs
    masked = Rounded(trained).eval()
    result = autoattack(masked, x, y, EPS, n_queries=1000)
    counts = result.counts()
    # measured: 4 + 2 + 0 broken by the gradient attacks (lucky starts), 29 by Square
    assert counts["apgd-ce"] + counts["apgd-t"] + counts["fab-t"] <= 12, counts
    assert counts["square"] >= 15, counts
    gradient_only = autoattack(masked, x, y, EPS, version="custom", attacks=("apgd-ce",))
    gap = gradient_only.robust_accuracy - result.robust_accuracy  # measured: 0.155
    assert gap > 0.07, (gap, counts, gradient_only.counts())


def test_custom_runs_the_attacks_given_in_order(trained, inputs):
    x, y = inputs[0][:60], inputs[1][:60]
    result = autoattack(
        trained, x, y, 0.6, "2", version="custom", attacks=("fab-t", "apgd-ce"), steps=20
    )
    assert result.attacks == ("fab-t", "apgd-ce")
    assert torch.all(lp(result.x_adv - x, "2") <= 0.6 + 1e-5)
    assert result.counts()["fab-t"] > 0


def test_seeded(trained, inputs):
    x, y = inputs[0][:50], inputs[1][:50]
    a = autoattack(trained, x, y, EPS, steps=10, n_queries=50, seed=1)
    b = autoattack(trained, x, y, EPS, steps=10, n_queries=50, seed=1)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.broken_by, b.broken_by)


def test_rand_version_no_weaker_than_torchattacks_rand(trained, inputs):
    """On a randomised model (input noise σ 0.1), ``version="rand"`` (APGD-CE and APGD-DLR,
    20 draws per step) leaves no more inputs robust than torchattacks' ``rand`` AutoAttack at
    its 10 steps, both judged by the same seeded 20-draw expected classifier (measured at
    100 steps: ours 52.0 %, theirs 55.5 %, clean 97.5 %)."""
    x, y = inputs
    noisy = Noisy(trained, 0.1).eval()
    ours = autoattack(noisy, x, y, EPS, version="rand", steps=10)
    assert ours.attacks == ("apgd-ce", "apgd-dlr")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        theirs = torchattacks.AutoAttack(
            noisy, norm="Linf", eps=EPS, version="rand", n_classes=10, seed=0
        )(x, y)
    mine, their_acc = expected_accuracy(noisy, ours.x_adv, y), expected_accuracy(noisy, theirs, y)
    assert 0.2 <= their_acc <= 0.8
    assert mine <= their_acc + 0.01, (mine, their_acc)
    assert torch.all(lp(ours.x_adv - x, "inf") <= EPS + 1e-6)
    assert ours.x_adv.min() >= 0 and ours.x_adv.max() <= 1


def test_eot_breaks_a_randomised_model_a_single_draw_does_not(trained, inputs):
    """Strong input noise (σ 0.3): one draw per step follows the noise, the mean over 20 draws
    follows the expected loss (APGD-CE, 200 inputs, 100 steps: 81.5 % left against 52.5 %;
    these 100 inputs at 20 steps: 76.0 % against 55.0 %)."""
    x, y = inputs[0][:100], inputs[1][:100]
    noisy = Noisy(trained, 0.3).eval()
    single = apgd(noisy, x, y, EPS, steps=20, eot_iter=1)
    eot = apgd(noisy, x, y, EPS, steps=20, eot_iter=20)
    gap = expected_accuracy(noisy, single, y) - expected_accuracy(noisy, eot, y)
    assert gap >= 0.1, gap


def test_a_randomised_model_repeats_and_the_caller_s_random_state_is_kept(trained, inputs):
    x, y = inputs[0][:40], inputs[1][:40]
    noisy = Noisy(trained, 0.1).eval()
    torch.manual_seed(7)
    state = torch.get_rng_state()
    a = autoattack(noisy, x, y, EPS, version="rand", steps=5, eot_iter=4, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = autoattack(noisy, x, y, EPS, version="rand", steps=5, eot_iter=4, seed=3)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.broken_by, b.broken_by)


def test_standard_warns_on_a_randomised_model_only(trained, inputs, recwarn):
    x, y = inputs[0][:20], inputs[1][:20]
    assert not is_randomised(trained, x) and is_randomised(Noisy(trained, 0.1), x)
    autoattack(trained, x, y, EPS, version="custom", attacks=("apgd-ce",), steps=2)
    assert not [w for w in recwarn if "randomised" in str(w.message)]
    with pytest.warns(UserWarning, match="a randomised defence.*use version=rand"):
        autoattack(Noisy(trained, 0.1), x, y, EPS, version="custom", attacks=("apgd-ce",),
                   steps=2)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"version": "eot"},
            "version must be one of standard, rand, custom, but got version='eot'",
        ),
        ({"version": "rand", "attacks": ("square",)}, "attacks is for version=custom"),
        ({"eot_iter": 0}, "eot_iter must be"),
        ({"attacks": ("square",)}, "attacks is for version=custom"),
        ({"version": "custom"}, "version=custom needs attacks"),
        (
            {"version": "custom", "attacks": ("pgd",)},
            "attacks must be among apgd-ce, apgd-dlr, apgd-t, fab-t, square, but got 'pgd'",
        ),
        (
            {"version": "custom", "attacks": ("square", "square")},
            "attacks must not repeat, but got square, square",
        ),
    ],
)
def test_bad_settings_are_one_line(trained, inputs, kwargs, message):
    with pytest.raises(ConfigError) as e:
        autoattack(trained, inputs[0][:4], inputs[1][:4], EPS, **kwargs)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
