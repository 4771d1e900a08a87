"""FAB-T (robust/attacks/fab.py): the box-constrained projection onto a hyperplane against
scipy's solvers, the attack contract, and torchattacks' FAB (multi-targeted) as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchattacks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq, linprog

from robust.attacks import fab, lp
from robust.attacks.fab import project_on_hyperplane
from robust.errors import ConfigError
from tests.nets import TinyNet, accuracy

EPS = {"inf": 0.12, "2": 0.6}


def _smallest_step(t: np.ndarray, w: np.ndarray, c: float, norm: str) -> np.ndarray | None:
    """scipy's answer to min ‖d‖ s.t. w·d = c, 0 ≤ t + d ≤ 1 (None: infeasible)."""
    d = len(t)
    box = [(-t[i], 1 - t[i]) for i in range(d)]
    if norm == "inf":  # variables (d, λ): min λ, −λ ≤ d_i ≤ λ
        eye = np.eye(d)
        res = linprog(
            np.r_[np.zeros(d), 1.0],
            A_ub=np.r_[np.c_[eye, -np.ones(d)], np.c_[-eye, -np.ones(d)]],
            b_ub=np.zeros(2 * d),
            A_eq=np.r_[w, 0.0][None],
            b_eq=[c],
            bounds=[*box, (0, None)],
        )
        return res.x[:d] if res.status == 0 else None
    # L2: by the KKT conditions d = clip(μ·w, box) for the μ where w·d = c; w·d is monotone in
    # μ, so scipy's brentq finds it (a root finder, not our sorted breakpoints)
    lo, hi = -t, 1 - t
    if (
        not np.minimum(w * lo, w * hi).sum() - 1e-12
        <= c
        <= np.maximum(w * lo, w * hi).sum() + 1e-12
    ):
        return None
    nz = w != 0
    if not nz.any():
        return np.zeros(d)
    m = float(np.max(np.maximum(np.abs(lo), np.abs(hi))[nz] / np.abs(w[nz]))) + 1.0
    mu = brentq(lambda u: w @ np.clip(u * w, lo, hi) - c, -m, m, xtol=1e-15, rtol=1e-15)
    return np.clip(mu * w, lo, hi)


@pytest.mark.parametrize("norm", ["inf", "2"])
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 9), far=st.booleans())
def test_the_projection_is_the_smallest_step_in_the_box(norm, seed, d, far):
    """Against scipy (an LP for L∞, a root of the KKT condition for L2): the same smallest norm
    whenever the
    hyperplane meets the box; always inside the box; when it does not meet it (``far``), the
    step ends at the box's corner nearest to it."""
    g = np.random.default_rng(seed)
    t, w = g.random(d), g.normal(size=d)
    w[g.random(d) < 0.2] = 0.0  # coordinates the hyperplane does not depend on
    b = w @ t + (g.choice([-1, 1]) * (np.abs(w).sum() + 1) if far else w @ g.random(d) - w @ t)
    step = project_on_hyperplane(
        torch.tensor(t)[None], torch.tensor(w)[None], torch.tensor([b]), norm
    )[0].numpy()
    assert np.all(t + step >= -1e-12) and np.all(t + step <= 1 + 1e-12)
    want = _smallest_step(t, w, b - w @ t, norm)
    if want is None:  # no point of the box on the hyperplane: the nearest corner
        corner = np.where(np.sign(b - w @ t) * w > 0, 1.0, np.where(w != 0, 0.0, t))
        np.testing.assert_allclose(t + step, corner, atol=1e-12)
        return
    assert abs(w @ (t + step) - b) < 1e-8
    size = np.abs(step).max(initial=0) if norm == "inf" else np.linalg.norm(step)
    best = np.abs(want).max(initial=0) if norm == "inf" else np.linalg.norm(want)
    assert size == pytest.approx(best, abs=1e-6)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 6),
    c=st.sampled_from([1, 3]),
    hw=st.integers(2, 6),
    norm=st.sampled_from(["inf", "2"]),
    eps=st.floats(0.0, 2.0, allow_subnormal=False),
    seed=st.integers(0, 2**16),
)
def test_outputs_are_within_eps_in_the_box_and_inputs_untouched(n, c, hw, norm, eps, seed):
    torch.manual_seed(seed)
    model = TinyNet(c, hw, hw)
    x = torch.rand(n, c, hw, hw)
    x[0, 0, 0, 0], x[-1, -1, -1, -1] = 0.0, 1.0
    y = torch.randint(0, 5, (n,))
    before = x.clone()
    x_adv = fab(model, x, y, eps, norm, steps=5, restarts=2, n_target_classes=2, seed=seed)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert torch.all(lp(x_adv - x, norm) <= eps * (1 + 1e-6) + 1e-6)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.equal(x, before)
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():  # a changed input is an adversarial one (up to float rounding:
        changed = (x_adv != x).flatten(1).any(1)  # FAB stops just past the boundary, and the
        z = model(x_adv[changed])  # attacked copy's kernels round unlike this model's)
        label = y[changed]
        margin = z.gather(1, label[:, None]).squeeze(1) - z.scatter(
            1, label[:, None], -torch.inf
        ).amax(1)
        assert torch.all(margin <= 1e-4)


@pytest.fixture(scope="module")
def inputs(digits):
    return digits.test.x[:200], digits.test.y[:200]


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_as_strong_as_torchattacks_fab_t(trained, inputs, norm):
    """Robust accuracy under ours ≤ torchattacks' multi-targeted FAB (9 targets, 30 steps,
    one restart) + 1 pp, where the model keeps 20–80 % (measured: equal, 45.5 % L∞ and
    50.0 % L2)."""
    x, y = inputs
    ours = accuracy(trained, fab(trained, x, y, EPS[norm], norm, steps=30), y)
    atk = torchattacks.FAB(
        trained, norm="Linf" if norm == "inf" else "L2", eps=EPS[norm], steps=30,
        multi_targeted=True, n_classes=10, seed=0,
    )  # fmt: skip
    theirs = accuracy(trained, atk(x, y), y)
    assert 0.2 <= theirs <= 0.8, theirs
    assert ours <= theirs + 0.01


def test_seeded_and_independent_of_the_batch_size(trained, inputs):
    x, y = inputs[0][:40], inputs[1][:40]
    a = fab(trained, x, y, EPS["inf"], steps=10, restarts=2, n_target_classes=3, seed=2)
    assert torch.equal(
        a, fab(trained, x, y, EPS["inf"], steps=10, restarts=2, n_target_classes=3, seed=2)
    )
    b = fab(
        trained, x, y, EPS["inf"], steps=10, restarts=2, n_target_classes=3, seed=2, batch_size=7
    )
    assert (a != x).flatten(1).any(1).tolist() == (b != x).flatten(1).any(1).tolist()
    torch.testing.assert_close(b, a, rtol=0, atol=1e-4)


def test_more_targets_and_steps_never_weaken_it(trained, inputs):
    x, y = inputs
    one = accuracy(trained, fab(trained, x, y, EPS["inf"], steps=10, n_target_classes=1), y)
    all9 = accuracy(trained, fab(trained, x, y, EPS["inf"], steps=10), y)
    assert all9 <= one


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"norm": "1"}, "norm must be inf or 2 for fab, but got norm='1'"),
        ({"steps": 0}, "steps must be an integer of at least 1, but got steps=0"),
        ({"alpha_max": 1.5}, "alpha_max must be a number in [0.0, 1.0], but got alpha_max=1.5"),
        ({"eta": 0.5}, "eta must be a number in [1.0, 10.0], but got eta=0.5"),
        ({"beta": -0.1}, "beta must be a number in [0.0, 1.0], but got beta=-0.1"),
        ({"n_target_classes": 0}, "n_target_classes must be an integer of at least 1"),
    ],
)
def test_bad_settings_are_one_line(trained, inputs, kwargs, message):
    with pytest.raises(ConfigError) as e:
        fab(trained, inputs[0][:4], inputs[1][:4], 0.1, **kwargs)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
