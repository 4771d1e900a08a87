"""APGD (robust/attacks/apgd.py): the attack contract, the paper's checkpoints and DLR loss by
their formulas, and torchattacks' APGD / APGD-T as the oracle of strength."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchattacks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robust.attacks import apgd, lp
from robust.attacks.apgd import checkpoints, dlr_loss
from robust.errors import ConfigError
from tests.nets import Noisy, TinyNet, accuracy

EPS = 0.12
"""An L∞ budget where the digits model of tests/conftest.py keeps 20–80 % under APGD."""
EPS_L2 = 0.6


def test_checkpoints_are_the_paper_s():
    """p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), w_j = ⌈p_j·N⌉."""
    p = [0.0, 0.22]
    while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    for steps in (1, 10, 37, 100, 1000):
        want = sorted({int(np.ceil(round(q * steps, 9))) for q in p[1:]} - {0})
        assert checkpoints(steps) == want
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 6), k=st.integers(4, 12))
def test_dlr_loss_is_the_formula(seed, n, k):
    g = np.random.default_rng(seed)
    z = g.normal(size=(n, k))
    y = g.integers(0, k, n)
    t = (y + 1 + g.integers(0, k - 1, n)) % k  # a class other than y
    s = -np.sort(-z, axis=1)
    other = np.array([np.max(np.delete(z[i], y[i])) for i in range(n)])
    zy, zt = z[np.arange(n), y], z[np.arange(n), t]
    want = -(zy - other) / (s[:, 0] - s[:, 2] + 1e-12)
    want_t = -(zy - zt) / (s[:, 0] - 0.5 * (s[:, 2] + s[:, 3]) + 1e-12)
    zt_, yt_ = torch.tensor(z), torch.tensor(y)
    np.testing.assert_allclose(dlr_loss(zt_, yt_).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(dlr_loss(zt_, yt_, torch.tensor(t)).numpy(), want_t, rtol=1e-12)
    shifted = dlr_loss(3.0 * zt_ + 7.0, yt_)  # invariant to a shift and a positive scale
    np.testing.assert_allclose(shifted.numpy(), want, rtol=1e-9)


@pytest.mark.parametrize(
    ("loss", "targeted"), [("ce", False), ("dlr", False), ("dlr", True), ("ce", True)]
)
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 7),
    c=st.sampled_from([1, 3]),
    hw=st.integers(2, 7),
    norm=st.sampled_from(["inf", "2"]),
    eps=st.floats(0.0, 2.0, allow_subnormal=False),
    seed=st.integers(0, 2**16),
    eot_iter=st.sampled_from([1, 3]),
)
def test_outputs_stay_in_the_ball_and_the_box(loss, targeted, n, c, hw, norm, eps, seed,
                                              eot_iter):  # fmt: skip
    torch.manual_seed(seed)
    model = TinyNet(c, hw, hw) if eot_iter == 1 else Noisy(TinyNet(c, hw, hw), 0.2)
    x = torch.rand(n, c, hw, hw)
    x[0, 0, 0, 0], x[-1, -1, -1, -1] = 0.0, 1.0
    y = torch.randint(0, 5, (n,))
    before = x.clone()
    x_adv = apgd(model, x, y, eps, norm, loss, targeted, steps=6, n_target_classes=2, seed=seed,
                 eot_iter=eot_iter)  # fmt: skip
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert torch.all(lp(x_adv - x, norm) <= eps + 1e-5)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.equal(x, before)
    assert all(p.grad is None for p in model.parameters())


@pytest.fixture(scope="module")
def inputs(digits):
    return digits.test.x[:200], digits.test.y[:200]


@pytest.mark.parametrize(
    ("norm", "eps", "loss"),
    [("inf", EPS, "ce"), ("inf", EPS, "dlr"), ("2", EPS_L2, "ce")],
)
def test_as_strong_as_torchattacks_apgd(trained, inputs, norm, eps, loss):
    """Robust accuracy under ours ≤ torchattacks' APGD (same steps, one restart) + 1 pp, at a
    budget where the model keeps 20–80 % of the inputs."""
    x, y = inputs
    ours = accuracy(trained, apgd(trained, x, y, eps, norm, loss, steps=50), y)
    atk = torchattacks.APGD(
        trained, norm="Linf" if norm == "inf" else "L2", eps=eps, steps=50, loss=loss, seed=0
    )
    theirs = accuracy(trained, atk(x, y), y)
    assert 0.2 <= theirs <= 0.8, theirs  # the comparison is informative at this budget
    assert ours <= theirs + 0.01


def test_targeted_as_strong_as_torchattacks_apgdt(trained, inputs):
    x, y = inputs
    ours = accuracy(trained, apgd(trained, x, y, EPS, loss="dlr", targeted=True, steps=30), y)
    atk = torchattacks.APGDT(trained, norm="Linf", eps=EPS, steps=30, n_classes=10, seed=0)
    theirs = accuracy(trained, atk(x, y), y)
    assert 0.2 <= theirs <= 0.8, theirs
    assert ours <= theirs + 0.01


def test_stronger_than_pgd_with_as_many_steps_and_more_steps_never_hurt(trained, inputs):
    from robust.attacks import pgd

    x, y = inputs
    a10 = accuracy(trained, apgd(trained, x, y, EPS, steps=10), y)
    a50 = accuracy(trained, apgd(trained, x, y, EPS, steps=50), y)
    p50 = accuracy(trained, pgd(trained, x, y, EPS, steps=50), y)
    assert a50 <= a10 + 0.01 and a50 <= p50 + 0.01


def test_seeded_and_independent_of_the_batch_size(trained, inputs):
    x, y = inputs[0][:40], inputs[1][:40]
    a = apgd(trained, x, y, EPS, steps=8, restarts=2, seed=4)
    assert torch.equal(a, apgd(trained, x, y, EPS, steps=8, restarts=2, seed=4))
    torch.testing.assert_close(
        apgd(trained, x, y, EPS, steps=8, restarts=2, seed=4, batch_size=7), a, rtol=0, atol=1e-5
    )
    assert not torch.equal(a, apgd(trained, x, y, EPS, steps=8, restarts=2, seed=5))


def test_inputs_already_misclassified_are_returned_as_they_are(trained, inputs):
    x = inputs[0]
    wrong = (trained(x).argmax(1) + 1) % 10  # every input misclassified under these labels
    assert torch.equal(apgd(trained, x, wrong, EPS, steps=5), x)


def test_a_fooled_input_stays_fooled(trained, inputs):
    """The result per input is an iterate that fools the model whenever one did."""
    x, y = inputs
    adv = apgd(trained, x, y, EPS, steps=20, restarts=2)
    assert accuracy(trained, adv, y) < accuracy(trained, x, y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"norm": "1"}, "norm must be inf or 2 for apgd, but got norm='1'"),
        ({"loss": "hinge"}, "loss must be one of ce, dlr, but got loss='hinge'"),
        ({"steps": 0}, "steps must be an integer of at least 1, but got steps=0"),
        ({"restarts": 0}, "restarts must be an integer of at least 1, but got restarts=0"),
        ({"rho": 1.0}, "rho must be a number in (0, 1), but got rho=1.0"),
        ({"n_target_classes": 0}, "n_target_classes must be an integer of at least 1"),
        ({"eot_iter": 0}, "eot_iter must be an integer of at least 1, but got eot_iter=0"),
    ],
)
def test_bad_settings_are_one_line(trained, inputs, kwargs, message):
    with pytest.raises(ConfigError) as e:
        apgd(trained, inputs[0][:4], inputs[1][:4], EPS, **kwargs)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_dlr_needs_enough_classes():
    model = TinyNet(1, 3, 3, classes=3)
    x, y = torch.rand(2, 1, 3, 3), torch.tensor([0, 1])
    apgd(model, x, y, 0.1, loss="dlr", steps=2)  # 3 classes: enough untargeted
    with pytest.raises(ConfigError, match=r"^loss=dlr targeted needs at least 4 classes"):
        apgd(model, x, y, 0.1, loss="dlr", targeted=True, steps=2)
