"""The DGN objective as deployed (robust/attacks/dgn/_generators.py, _losses.py): training
through the ε-clip (straight-through clamp, tanh), the bounded nce loss, and the clip mode
kept by save, load and train_further."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from robust.attacks import dgn
from robust.attacks.dgn import LossContext
from robust.errors import ConfigError

MODES = [pytest.param(mode, id=mode) for mode in dgn.CLIPS]


def _pair(seed: int, shape=(4, 1, 6, 6)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


@pytest.fixture(scope="module")
def small(digits):
    """Three classes of digits, 10 inputs each."""
    keep = torch.cat([torch.nonzero(digits.train.y == c)[:10, 0] for c in (0, 1, 2)])
    return digits.train.x[keep], digits.train.y[keep]


# ---- the clip in training ------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(eps=st.floats(0.001, 1.0), seed=st.integers(0, 2**16), mode=st.sampled_from(dgn.CLIPS))
def test_every_mode_deploys_within_eps_and_in_range_keeping_the_sign(eps, seed, mode):
    x, x_gen = _pair(seed)
    out = dgn.eps_clip(x, x_gen, eps, mode)
    assert (out - x).abs().max() <= eps + 1e-6
    assert out.min() >= 0 and out.max() <= 1
    assert torch.all(torch.sign(out - x) * torch.sign(x_gen - x) >= 0)
    view = dgn.train_view(x, x_gen, eps, mode)
    if mode == "generation":  # the seed: the loss sees the raw output
        assert torch.equal(view, x_gen)
    else:  # the loss sees what is deployed (straight-through: up to x̃ + (out − x̃) rounding)
        assert torch.allclose(view, out, rtol=0, atol=1e-6)


def test_straight_through_passes_the_gradient_where_the_clamp_stops_it():
    x, raw = (t.double() for t in _pair(1))  # float64: tanh's gradient is 1 − tanh², exact
    eps = 0.1
    x_gen = raw.clone().requires_grad_(True)
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    (g_plain,) = torch.autograd.grad((dgn.eps_clip(x, x_gen, eps) * weights).sum(), x_gen)
    (g_ste,) = torch.autograd.grad(
        (dgn.train_view(x, x_gen, eps, "straight_through") * weights).sum(), x_gen
    )
    outside = (raw - x).abs() > eps
    assert outside.float().mean() > 0.5  # most elements are clipped at ε = 0.1
    assert torch.all(g_plain[outside] == 0)
    assert torch.equal(g_ste, weights)  # the identity backward: non-zero everywhere
    (g_tanh,) = torch.autograd.grad((dgn.train_view(x, x_gen, eps, "tanh") * weights).sum(), x_gen)
    want = weights / torch.cosh((raw - x) / eps) ** 2  # d/dx̃ of x + ε·tanh((x̃ − x)/ε)
    assert torch.allclose(g_tanh, want, rtol=1e-6, atol=0) and torch.all(g_tanh != 0)


def test_tanh_is_a_smooth_clip_that_shrinks_inside_the_budget():
    x = torch.full((1, 1, 1, 3), 0.5)
    x_gen = torch.tensor([0.55, 0.5, 0.0]).view(1, 1, 1, 3)
    out = dgn.tanh_clip(x, x_gen, 0.1)
    want = 0.5 + 0.1 * torch.tanh(torch.tensor([0.5, 0.0, -5.0]))
    assert torch.allclose(out.flatten(), want, atol=1e-7)


@pytest.mark.parametrize("fn", ["train_view", "eps_clip"])
def test_an_unknown_clip_mode_is_refused(fn):
    x, x_gen = _pair(0)
    with pytest.raises(ConfigError) as e:
        getattr(dgn, fn)(x, x_gen, 0.1, "sign")
    assert str(e.value) == (
        "clip must be one of straight_through, tanh, generation, but got clip='sign'"
    )


def test_training_refuses_an_unknown_clip_mode(trained, small):
    with pytest.raises(ConfigError, match=r"^clip must be one of straight_through, tanh, gen"):
        dgn.train(trained, *small, eps=0.3, epochs=1, clip="clamp", progress=False)


@pytest.mark.parametrize("mode", MODES)
def test_the_loss_sees_the_view_of_the_mode(trained, small, mode):
    """A loss recording its x_gen gets train_view(x, raw output) under the generators' mode."""
    seen = []

    @dgn.register_loss("recording_test")
    def recording(x, x_gen, ctx, *, alpha=1.0):
        seen.append((ctx.label, x.detach(), x_gen.detach()))
        return alpha * F.mse_loss(x_gen, x)

    try:
        gens = dgn.train(
            trained, *small, "recording_test", eps=0.1, epochs=1, batch_size=10,
            lr=1e-12, clip=mode, progress=False,
        )  # fmt: skip
    finally:
        dgn.LOSSES.pop("recording_test", None)
    label, x, view = seen[0]
    net = gens.nets[str(label)].train()  # batch norm on the batch's statistics, as in training
    with torch.no_grad():
        raw = net(x)  # lr 1e-12: the weights barely moved since that step
    assert torch.allclose(view, dgn.train_view(x, raw, 0.1, mode), atol=1e-5)
    assert (mode == "generation") == bool(((view - x).abs() > 0.1 + 1e-6).any())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("loss", ["lrp", "nce", "susp"])
def test_generated_inputs_are_within_eps_and_in_range(trained, small, digits, loss, mode):
    gens = dgn.train(
        trained, *small, loss, eps=0.2, epochs=1, batch_size=10, clip=mode, k=4, progress=False
    )
    assert gens.clip == mode and gens.spec["clip"] == mode
    x, y = digits.test.x[:60], digits.test.y[:60]
    keep = y < 3
    x, y = x[keep], y[keep]
    out = gens.generate(x, y)
    assert (out - x).abs().max() <= 0.2 + 1e-6 and out.min() >= 0 and out.max() <= 1
    with torch.no_grad():
        for i in (0, len(x) - 1):
            want = dgn.eps_clip(x[i : i + 1], gens(x[i : i + 1], int(y[i])), 0.2, mode)
            assert torch.allclose(out[i : i + 1], want, atol=1e-6)


# ---- the mode is part of the generators --------------------------------------------------


def test_the_clip_mode_round_trips_through_save_load_and_train_further(
    trained, small, digits, tmp_path
):
    gens = dgn.train(trained, *small, "nce", eps=0.3, epochs=1, clip="tanh", progress=False)
    loaded = dgn.load(dgn.save(gens, tmp_path))
    assert loaded.clip == "tanh" and loaded.spec == gens.spec
    x, y = digits.test.x[:40], digits.test.y[:40]
    x, y = x[y < 3], y[y < 3]
    assert torch.equal(loaded.generate(x, y), gens.generate(x, y))
    further = dgn.train_further(loaded, trained, *small, epochs=1)
    assert further.clip == "tanh" and further.spec["weights"] == gens.spec["weights"]


def test_generators_saved_before_the_mode_existed_keep_the_seed_s(trained, small, tmp_path):
    """A spec without ``clip`` was trained with the clip at generation only; train_further
    continues so, and generation clips as before (Eq. 4.8, no tanh)."""
    gens = dgn.train(trained, *small, "nce", eps=0.3, epochs=1, clip="tanh", progress=False)
    spec = {k: v for k, v in gens.spec.items() if k != "clip"}
    old = dgn.Generators({c: gens.nets[str(c)] for c in gens.classes}, eps=0.3, spec=spec).eval()
    assert old.clip == "generation"
    assert dgn.train_further(old, trained, *small, epochs=1).clip == "generation"
    x, y = small
    with torch.no_grad():
        want = dgn.eps_clip(x[:1], gens(x[:1], int(y[0])), 0.3)
    assert torch.allclose(old.generate(x[:1], y[:1]), want, atol=1e-6)


# ---- the bounded nce loss ------------------------------------------------------------------


class _Linear(nn.Module):
    """logits = scale · (W x): CE grows with the scale, so an input can be made to saturate."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(3, 16, generator=g), requires_grad=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale[: len(x), None] * (x.flatten(1) @ self.w.T)


def _nce_terms(model, x, x_gen, **weights):
    ctx = LossContext(model, 0, 0.3)
    return dgn.LOSSES["nce"].fn(x, x_gen, ctx, **weights)


def test_nce_is_bounded_below_and_p_min_0_is_the_seed_s():
    x, x_gen = _pair(3, (4, 1, 4, 4))
    model = _Linear(torch.full((4,), 1e3))  # CE in the hundreds
    y = torch.zeros(4, dtype=torch.int64)
    ce = F.cross_entropy(model(x_gen), y)
    assert ce > 50
    seed = _nce_terms(model, x, x_gen, alpha=1.0, beta=2.0, p_min=0.0)
    mse = F.mse_loss(x_gen, x)
    assert seed.item() == pytest.approx((mse - 2.0 * ce).item(), rel=1e-6)
    bounded = _nce_terms(model, x, x_gen, alpha=1.0, beta=2.0, p_min=0.05)
    per_input = F.cross_entropy(model(x_gen), y, reduction="none")
    capped = per_input.clamp(max=-math.log(0.05)).mean()
    assert bounded.item() == pytest.approx((mse - 2.0 * capped).item(), rel=1e-6)
    assert bounded >= -2.0 * -math.log(0.05) and seed < -100


def test_bounded_nce_has_the_unbounded_gradient_until_it_saturates():
    """Per input: below the cap the gradient is the seed's, above it only the MSE's."""
    x, raw = _pair(4, (4, 1, 4, 4))
    model = _Linear(torch.tensor([1e-3, 1e-3, 1e3, 1e3]))  # inputs 0, 1 below the cap
    x_gen = raw.clone().requires_grad_(True)

    def grad(**weights):
        (g,) = torch.autograd.grad(_nce_terms(model, x, x_gen, **weights), x_gen)
        return g

    bounded, seed = grad(p_min=0.01), grad(p_min=0.0)
    mse_only = grad(beta=0.0, p_min=0.0)
    y = torch.zeros(4, dtype=torch.int64)
    per_input = F.cross_entropy(model(raw), y, reduction="none")
    assert torch.all(per_input[:2] < -math.log(0.01)) and torch.all(per_input[2:] > 10)
    assert torch.allclose(bounded[:2], seed[:2], rtol=1e-6, atol=1e-9)
    assert torch.allclose(bounded[2:], mse_only[2:], rtol=1e-6, atol=1e-9)
    assert not torch.allclose(seed[:2], mse_only[:2])  # the CE term acts there


@pytest.mark.parametrize("p_min", [-0.1, 1.0, 2.0])
def test_nce_refuses_p_min_outside_0_1(p_min):
    x, x_gen = _pair(5, (2, 1, 4, 4))
    with pytest.raises(ConfigError) as e:
        _nce_terms(_Linear(torch.ones(2)), x, x_gen, p_min=p_min)
    assert str(e.value) == f"p_min must be in [0, 1) (0: no bound), but got p_min={p_min}"


def test_p_min_is_an_nce_weight_with_its_default(trained, small):
    assert dgn.LOSSES["nce"].weights == {"alpha": 1.0, "beta": 1.0, "p_min": 0.01}
    gens = dgn.train(trained, *small, "nce", eps=0.3, epochs=1, p_min=0.0, progress=False)
    assert gens.spec["weights"] == {"alpha": 1.0, "beta": 1.0, "p_min": 0.0}
    with pytest.raises(ConfigError, match=r"^the lrp loss takes the weights alpha, but got p_min"):
        dgn.train(trained, *small, "lrp", eps=0.3, epochs=1, p_min=0.1, progress=False)
