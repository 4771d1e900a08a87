"""One contract for every attack (STYLE.md §10): ε-ball and [0, 1], robust ≤ clean accuracy,
nothing of the caller's changes, seeded runs repeat."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robust.attacks import NORMS, bim, fgsm, lp, pgd
from robust.errors import ConfigError
from tests.nets import TinyNet

ATTACKS = [
    pytest.param(lambda m, x, y, eps, norm, **kw: fgsm(m, x, y, eps, norm, **kw), id="fgsm"),
    pytest.param(
        lambda m, x, y, eps, norm, **kw: pgd(m, x, y, eps, 5, eps / 2, norm, **kw), id="pgd"
    ),
    pytest.param(
        lambda m, x, y, eps, norm, **kw: pgd(m, x, y, eps, 3, eps / 2, norm, restarts=2, **kw),
        id="pgd-restarts",
    ),
    pytest.param(
        lambda m, x, y, eps, norm, **kw: bim(m, x, y, eps, 5, eps / 4, norm, **kw), id="bim"
    ),
]


@pytest.mark.parametrize("attack", ATTACKS)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 9),
    c=st.sampled_from([1, 3]),
    hw=st.integers(2, 9),
    norm=st.sampled_from(NORMS),
    eps=st.floats(0.0, 3.0, allow_subnormal=False),
    seed=st.integers(0, 2**16),
)
def test_outputs_stay_in_the_ball_and_the_box(attack, n, c, hw, norm, eps, seed):
    torch.manual_seed(seed)
    model = TinyNet(c, hw, hw)
    x = torch.rand(n, c, hw, hw)
    x[0, 0, 0, 0] = 0.0  # pixels at the box edges are the hard case for clipping
    x[-1, -1, -1, -1] = 1.0
    y = torch.randint(0, 5, (n,))
    x_adv = attack(model, x, y, eps, norm)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert torch.all(lp(x_adv - x, norm) <= eps + 1e-6)
    assert x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize("attack", ATTACKS)
def test_robust_accuracy_is_at_most_clean(attack, trained, digits):
    x, y = digits.test.x, digits.test.y
    clean = (trained(x).argmax(1) == y).float().mean()
    robust = (trained(attack(trained, x, y, 0.2, "inf")).argmax(1) == y).float().mean()
    assert robust <= clean
    assert robust < clean - 0.3  # ε = 0.2 on 8×8 digits is a strong attack


@pytest.mark.parametrize("attack", ATTACKS)
def test_caller_state_is_untouched(attack, trained, digits):
    x = digits.test.x[:32].clone()
    x_before = x.clone()
    trained.train()  # a model in training mode must come back in training mode
    for p in trained.parameters():
        p.grad = None  # fit leaves the last step's gradients
    params = {k: v.clone() for k, v in trained.state_dict().items()}
    try:
        attack(trained, x, digits.test.y[:32], 0.1, "inf")
        assert trained.training
    finally:
        trained.eval()
    assert torch.equal(x, x_before) and not x.requires_grad
    assert all(p.grad is None for p in trained.parameters())
    assert all(torch.equal(v, params[k]) for k, v in trained.state_dict().items())
    assert all(p.is_contiguous() for p in trained.parameters())  # no channels-last leak
    assert not any(m._forward_hooks or m._backward_hooks for m in trained.modules())


@pytest.mark.parametrize("attack", ATTACKS)
def test_seeded_runs_repeat_and_batch_size_does_not_matter(attack, trained, digits):
    """A rerun is bit-identical, and batches of 7 (the last one ragged) give what one automatic
    batch gives: the per-sample gradients, the random starts and the per-sample restart choice
    must not depend on how the inputs are split (float rounding aside: ~6e-8)."""
    x, y = digits.test.x[:40], digits.test.y[:40]
    a = attack(trained, x, y, 0.1, "2")
    b = attack(trained, x, y, 0.1, "2")
    assert torch.equal(a, b)
    c = attack(trained, x, y, 0.1, "2", batch_size=7)
    torch.testing.assert_close(c, a, rtol=0, atol=1e-6)


def test_random_start_is_independent_of_batch_size(trained, digits):
    x, y = digits.test.x[:50], digits.test.y[:50]
    a = pgd(trained, x, y, 0.1, 3, 0.05, random_start=True, restarts=2, seed=3, batch_size=7)
    b = pgd(trained, x, y, 0.1, 3, 0.05, random_start=True, restarts=2, seed=3, batch_size=64)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    c = pgd(trained, x, y, 0.1, 3, 0.05, random_start=True, restarts=2, seed=4)
    assert not torch.equal(a, c)


def test_use_predicted_attacks_the_model_labels(trained, digits):
    x = digits.test.x[:64]
    pred = trained(x).argmax(1)
    assert torch.equal(
        fgsm(trained, x, None, 0.1, use_predicted=True), fgsm(trained, x, pred, 0.1)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"eps": -0.1}, r"eps must be at least 0, but got eps=-0.1", id="eps"),
        pytest.param(
            {"steps": 0}, r"steps must be an integer of at least 1, but got steps=0", id="steps"
        ),
        pytest.param({"restarts": 0}, r"restarts must be an integer of at least 1", id="restarts"),
        pytest.param({"step_size": 0.0}, r"step_size must be greater than 0", id="step"),
        pytest.param({"norm": "3"}, r"norm must be one of inf, 2, 1, but got norm='3'", id="norm"),
        pytest.param({"batch_size": 0}, r"batch_size must be an integer of at least 1", id="bs"),
        pytest.param({"keep": "first"}, r"keep must be one of best, last, but got keep='first'"),
    ],
)
def test_bad_arguments(trained, digits, kwargs, message):
    args = {"eps": 0.1, "steps": 2, "step_size": 0.05, **kwargs}
    with pytest.raises(ConfigError, match=message):
        pgd(trained, digits.test.x[:4], digits.test.y[:4], **args)


def test_limits_accept_their_boundaries(trained, digits):
    x, y = digits.test.x[:4], digits.test.y[:4]
    assert torch.equal(pgd(trained, x, y, 0.0, 1, random_start=True), x)  # ε = 0: no change
    pgd(trained, x, y, 0.1, steps=1, step_size=1e-9, restarts=1, batch_size=1)


def test_bad_inputs(trained, digits):
    x, y = digits.test.x[:4], digits.test.y[:4]
    with pytest.raises(ConfigError, match=r"x must lie in \[0, 1\]"):
        fgsm(trained, x * 2, y, 0.1)
    with pytest.raises(ConfigError, match=r"x must be a float tensor of shape \(N, C, H, W\)"):
        fgsm(trained, x[0], y, 0.1)
    with pytest.raises(ConfigError, match=r"y must be integer labels of shape \(4,\)"):
        fgsm(trained, x, y[:3], 0.1)
    with pytest.raises(ConfigError, match="y \\(the true labels\\) is required"):
        fgsm(trained, x, None, 0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": -0.1}, "eps must be at least 0, but got eps=-0.1"),
        ({"batch_size": 0}, "batch_size must be an integer of at least 1, but got batch_size=0"),
        ({"norm": "INF"}, None),  # the norm's name is not case-sensitive
    ],
)
def test_fgsm_names_the_bad_argument(trained, digits, kwargs, message):
    x, y = digits.test.x[:4], digits.test.y[:4]
    if message is None:
        assert torch.equal(fgsm(trained, x, y, 0.1, **kwargs), fgsm(trained, x, y, 0.1))
        return
    with pytest.raises(ConfigError) as e:
        fgsm(trained, x, y, **{"eps": 0.1, **kwargs})
    assert str(e.value) == message
