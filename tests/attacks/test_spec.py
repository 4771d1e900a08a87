"""The attack spec (robust/attacks/spec.py): craft is the method's function with the spec's
settings, every bad setting is one ConfigError sentence, describe reports what the method uses."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from robust import attacks
from robust.attacks import EPS, METHODS, AttackSpec, default_eps, dgn
from robust.errors import ConfigError


@pytest.fixture(scope="module")
def xy(digits):
    return digits.test.x[:40], digits.test.y[:40]


@pytest.fixture(scope="module")
def gens(trained, digits):
    x, y = digits.train.x[:200], digits.train.y[:200]
    return dgn.train(trained, x, y, "nce", eps=0.3, epochs=1, batch_size=16, progress=False)


@pytest.mark.parametrize("norm", attacks.NORMS)
@pytest.mark.parametrize(
    ("spec", "direct"),
    [
        pytest.param(
            lambda norm: AttackSpec("fgsm", 0.3, norm),
            lambda m, x, y, norm: attacks.fgsm(m, x, y, 0.3, norm, batch_size=16),
            id="fgsm",
        ),
        pytest.param(
            lambda norm: AttackSpec("fgsm", 0.3, norm, use_predicted=True),
            lambda m, x, y, norm: attacks.fgsm(
                m, x, None, 0.3, norm, use_predicted=True, batch_size=16
            ),
            id="fgsm-predicted",
        ),
        pytest.param(
            lambda norm: AttackSpec("pgd", 0.3, norm, steps=3, seed=7),
            lambda m, x, y, norm: attacks.pgd(m, x, y, 0.3, 3, None, norm, seed=7, batch_size=16),
            id="pgd",
        ),
        pytest.param(
            lambda norm: AttackSpec("pgd", 0.3, norm, steps=2, step_size=0.1, restarts=2),
            lambda m, x, y, norm: attacks.pgd(
                m, x, y, 0.3, 2, 0.1, norm, restarts=2, batch_size=16
            ),
            id="pgd-restarts",
        ),
        pytest.param(
            lambda norm: AttackSpec("pgd", 0.3, norm, steps=3, random_start=False),
            lambda m, x, y, norm: attacks.pgd(
                m, x, y, 0.3, 3, None, norm, random_start=False, batch_size=16
            ),
            id="pgd-no-start",
        ),
        pytest.param(
            lambda norm: AttackSpec("bim", 0.3, norm, steps=3, step_size=0.05),
            lambda m, x, y, norm: attacks.bim(m, x, y, 0.3, 3, 0.05, norm, batch_size=16),
            id="bim",
        ),
    ],
)
def test_craft_is_the_attack_called_directly(trained, xy, spec, direct, norm):
    x, y = xy
    x_adv = spec(norm).craft(trained, x, y, batch_size=16)
    assert torch.equal(x_adv, direct(trained, x, y, norm))


def test_bim_is_pgd_without_random_start_keeping_the_last_iterate(trained, xy):
    x, y = xy
    bim = AttackSpec("bim", 0.3, steps=3).craft(trained, x, y)
    last = attacks.pgd(trained, x, y, 0.3, 3, random_start=False, seed=5, keep="last")
    assert torch.equal(bim, last)
    best = AttackSpec("pgd", 0.3, steps=3, random_start=False, seed=5).craft(trained, x, y)
    assert torch.equal(best, attacks.pgd(trained, x, y, 0.3, 3, random_start=False, seed=5))


@pytest.mark.parametrize("route", dgn.ROUTES)
def test_dgn_craft_is_the_generators(trained, xy, gens, route):
    x, y = xy
    spec = AttackSpec("dgn", gens.eps, generators=gens, route=route)
    expected = gens.generate(x, y, model=trained, route=route)
    assert torch.equal(spec.craft(trained, x, y), expected)
    batched = spec.craft(trained, x, y, batch_size=7)
    # routed by prediction, an input at a near tie of its top two logits may be predicted
    # (and routed) the other way in batches of 7: those are left out;
    with torch.no_grad():
        top2 = trained(x).topk(2, dim=1).values
    clear = (
        (top2[:, 0] - top2[:, 1] > 1e-4)
        if route == "prediction"
        else torch.ones_like(y, dtype=torch.bool)
    )
    assert clear.float().mean() > 0.9
    # other batches round the generators' convolutions otherwise (seen: 1e-7 with one thread)
    torch.testing.assert_close(batched[clear], expected[clear], rtol=0, atol=1e-5)


def test_seed_changes_pgd_only(trained, xy):
    x, y = xy
    fgsm = AttackSpec("fgsm", 0.3)
    assert torch.equal(
        dataclasses.replace(fgsm, seed=9).craft(trained, x, y), fgsm.craft(trained, x, y)
    )
    pgd = AttackSpec("pgd", 0.3, steps=2)
    other = dataclasses.replace(pgd, seed=9).craft(trained, x, y)
    assert not torch.equal(other, pgd.craft(trained, x, y))


def test_spec_is_a_value(gens):
    assert AttackSpec("pgd", 0.3, "Linf") == AttackSpec("pgd", 0.3, "inf")
    assert AttackSpec("pgd", 0.3, 2).norm == "2"
    assert AttackSpec("dgn", 0.3, generators=gens) == AttackSpec("dgn", 0.3, generators=gens)
    assert "generators" not in repr(AttackSpec("dgn", 0.3, generators=gens))
    with pytest.raises(dataclasses.FrozenInstanceError):
        AttackSpec("fgsm", 0.3).eps = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError):
        AttackSpec("pgd", 0.3, "inf", 10)  # type: ignore[misc]  # steps on are keyword-only


def test_describe_reports_what_the_method_uses(gens):
    assert AttackSpec("fgsm", 0.1, steps=3).describe() == {
        "method": "fgsm", "eps": 0.1, "norm": "inf",
    }  # fmt: skip
    pgd = AttackSpec("pgd", 0.2, steps=10, seed=3).describe()
    assert pgd == {
        "method": "pgd", "eps": 0.2, "norm": "inf", "steps": 10, "step_size": pytest.approx(0.05),
        "restarts": 1, "seed": 3,
    }  # fmt: skip
    assert list(pgd) == ["method", "eps", "norm", "steps", "step_size", "restarts", "seed"]
    assert AttackSpec("pgd", 0.2, step_size=0.01).describe()["step_size"] == 0.01
    assert AttackSpec("bim", 0.2, "1", steps=4, seed=3).describe() == {
        "method": "bim", "eps": 0.2, "norm": "1", "steps": 4, "step_size": pytest.approx(0.125),
    }  # fmt: skip
    assert AttackSpec("dgn", 0.3, generators=gens, route="prediction").describe() == {
        "method": "dgn", "eps": 0.3, "norm": "inf", "route": "prediction",
    }  # fmt: skip


def test_describe_adds_options_off_their_defaults():
    fgsm = AttackSpec("fgsm", 0.1, use_predicted=True).describe()
    assert fgsm["use_predicted"] is True
    pgd = AttackSpec("pgd", 0.1, random_start=False, use_predicted=True).describe()
    assert pgd["random_start"] is False and pgd["use_predicted"] is True
    assert "random_start" not in AttackSpec("bim", 0.1).describe()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"method": "cw"},
            r"^method must be one of fgsm, pgd, bim, dgn, but got method='cw'$",
            id="method",
        ),
        pytest.param(
            {"eps": -0.01},
            r"^eps must be a finite number of at least 0, but got eps=-0.01$",
            id="eps",
        ),
        pytest.param({"eps": float("nan")}, r"eps must be .* got eps=nan$", id="eps-nan"),
        pytest.param({"eps": float("inf")}, r"eps must be .* got eps=inf$", id="eps-inf"),
        pytest.param({"eps": True}, r"eps must be .* got eps=True$", id="eps-bool"),
        pytest.param(
            {"norm": "3"}, r"^norm must be one of inf, 2, 1, but got norm='3'$", id="norm"
        ),
        pytest.param(
            {"steps": 0}, r"^steps must be an integer of at least 1, but got steps=0$", id="steps"
        ),
        pytest.param({"steps": 2.0}, r"steps must be an integer .*steps=2.0$", id="steps-float"),
        pytest.param(
            {"restarts": 0},
            r"^restarts must be an integer of at least 1, but got restarts=0$",
            id="restarts",
        ),
        pytest.param(
            {"step_size": 0.0},
            r"^step_size must be a finite number greater than 0 or None .*step_size=0.0$",
            id="step_size",
        ),
        pytest.param({"step_size": float("inf")}, r"step_size=inf$", id="step_size-inf"),
        pytest.param(
            {"random_start": 1}, r"^random_start must be True or False, .*=1$", id="random_start"
        ),
        pytest.param(
            {"use_predicted": "yes"}, r"^use_predicted must be True or False", id="use_predicted"
        ),
        pytest.param(
            {"seed": -1}, r"^seed must be a non-negative integer, but got seed=-1$", id="seed"
        ),
        pytest.param({"seed": 1.5}, r"seed must be .*seed=1.5$", id="seed-float"),
        pytest.param(
            {"method": "dgn"},
            r"^generators must be robust.attacks.dgn.Generators for method='dgn', .* NoneType$",
            id="dgn-no-generators",
        ),
        pytest.param(
            {"generators": object()},
            r"^generators are only used by method='dgn', but got method='pgd'$",
            id="generators-not-dgn",
        ),
    ],
)
def test_bad_settings_are_one_config_error_each(kwargs, message):
    settings = {"method": "pgd", "eps": 0.1} | kwargs
    with pytest.raises(ConfigError, match=message) as info:
        AttackSpec(**settings)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"route": "random"},
            r"^route must be one of label, prediction, but got route='random'$",
            id="route",
        ),
        pytest.param({"norm": "2"}, r"^norm must be inf for method='dgn'.*norm='2'$", id="norm"),
        pytest.param(
            {"eps": 0.1}, r"^eps must be the generators' eps=0.3 .*, but got eps=0.1$", id="eps"
        ),
        pytest.param(
            {"use_predicted": True}, r"^use_predicted must be False for method='dgn'", id="pred"
        ),
    ],
)
def test_bad_dgn_settings(gens, kwargs, message):
    settings = {"method": "dgn", "eps": 0.3, "generators": gens} | kwargs
    with pytest.raises(ConfigError, match=message):
        AttackSpec(**settings)


def test_limits_are_allowed(gens):
    AttackSpec("fgsm", 0.0)
    AttackSpec("pgd", 0.1, steps=1, restarts=1, step_size=1e-6, norm="1", seed=0)
    AttackSpec("dgn", 0.3, generators=gens, route="prediction")


def test_default_eps_and_methods():
    assert METHODS == ("fgsm", "pgd", "bim", "dgn")
    assert EPS == {"digits": 0.3, "mnist": 0.3, "fashion": 0.3}
    assert all(default_eps(d) == 0.3 for d in EPS)
    assert default_eps("cifar10") == default_eps("gtsrb") == 8 / 255
    assert not hasattr(dgn, "EPS")


@pytest.mark.parametrize("norm", attacks.NORMS)
def test_the_eps_bound_is_the_largest_distance_in_the_unit_cube(xy, norm):
    """max_distance is attained (all-black to all-white) and is the last budget accepted."""
    x, _ = xy
    d = x[0].numel()
    top = attacks.max_distance(norm, d)
    reach = attacks.lp(torch.ones_like(x[:1]) - torch.zeros_like(x[:1]), norm).item()
    assert reach == pytest.approx(top)
    attacks.check_eps(top, norm, d)  # the bound itself is a (degenerate) threat model
    with pytest.raises(ConfigError, match=rf"^eps must be at most {top:g}, the largest L{norm}"):
        attacks.check_eps(top * 1.01, norm, d)


def test_craft_refuses_a_budget_beyond_the_inputs(trained, xy):
    x, y = xy  # 8x8 digits: L2 at most 8, L1 at most 64
    with pytest.raises(ConfigError, match=r"at most 8, the largest L2 distance .* of 64 values"):
        AttackSpec("pgd", 9.0, norm="2", steps=1).craft(trained, x, y)
    with pytest.raises(ConfigError, match=r"^eps must be at most 1, the largest Linf distance"):
        AttackSpec("fgsm", 1.5)  # L∞ needs no inputs: refused at once
    out = AttackSpec("fgsm", 8.0, norm="2").craft(trained, x, y)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("method", ["fgsm", "bim", "pgd"])
def test_craft_passes_batch_size_and_use_predicted_on(trained, xy, method, batch_sizes):
    """The spec's use_predicted reaches the attack (no labels needed, the predictions
    attacked) and craft's batch_size bounds every forward pass."""
    x, _ = xy
    spec = AttackSpec(method, 0.2, steps=2, use_predicted=True)
    with batch_sizes(trained) as sizes:
        out = spec.craft(trained, x, None, batch_size=6)
    assert sizes and max(sizes) <= 6
    pred = trained(x).argmax(1)
    direct = {
        "fgsm": lambda: attacks.fgsm(trained, x, pred, 0.2),
        "bim": lambda: attacks.bim(trained, x, pred, 0.2, 2),
        "pgd": lambda: attacks.pgd(trained, x, pred, 0.2, 2),
    }[method]()
    torch.testing.assert_close(out, direct, rtol=0, atol=1e-6)  # batch 6 or one: rounding only


def test_dgn_craft_passes_batch_size(trained, xy, gens, batch_sizes):
    x, y = xy
    with batch_sizes(*gens.nets.values()) as sizes:
        AttackSpec("dgn", gens.eps, generators=gens).craft(trained, x, y, batch_size=3)
    assert sizes and max(sizes) <= 3


def test_a_spec_s_defaults_are_the_attack_functions(trained, xy):
    """AttackSpec(method, eps) crafts what the function does with its own defaults (PGD(20)
    from a random start, seed 0); bim takes the spec's 20 steps where bim() takes 10."""
    x, y = xy[0][:12], xy[1][:12]
    assert torch.equal(
        AttackSpec("pgd", 0.1).craft(trained, x, y), attacks.pgd(trained, x, y, 0.1)
    )
    assert torch.equal(
        AttackSpec("fgsm", 0.1).craft(trained, x, y), attacks.fgsm(trained, x, y, 0.1)
    )
    assert torch.equal(
        AttackSpec("bim", 0.1).craft(trained, x, y), attacks.bim(trained, x, y, 0.1, 20)
    )


@pytest.mark.parametrize("eps", [True, float("inf"), float("nan"), -1e-9, "0.1", None])
def test_check_eps_refuses_what_is_not_a_finite_budget(eps):
    message = rf"^eps must be a finite number of at least 0, but got {re.escape(f'eps={eps!r}')}$"
    for norm, dim in (("inf", None), ("2", 64), ("1", None)):
        with pytest.raises(ConfigError, match=message):
            attacks.check_eps(eps, norm, dim)


def test_check_eps_bounds_l2_and_l1_only_given_the_dimension():
    attacks.check_eps(0)
    attacks.check_eps(1, "Linf")
    attacks.check_eps(100.0, "2")  # no dimension: nothing to bound an L2 or L1 budget by
    attacks.check_eps(100.0, "1")
    attacks.check_eps(64, "1", 64)
    with pytest.raises(ConfigError, match=r"^eps must be at most 1, the largest Linf distance "):
        attacks.check_eps(1.5, "inf", 64)
    with pytest.raises(ConfigError, match=r"^eps must be at most 8, .* of 64 values in \[0, 1\]"):
        attacks.check_eps(8.5, "2", 64)
    with pytest.raises(ConfigError, match=r"^norm must be one of inf, 2, 1, but got norm='3'$"):
        attacks.check_eps(0.1, "3")
