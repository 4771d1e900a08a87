"""Tests of robust/training/trades.py and of TRADES training (adversarial_fit, trades_attack)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from robust.attacks import pgd
from robust.errors import ConfigError
from robust.models import build
from robust.training import (
    adversarial_fit,
    fit,
    trades_attack,
    trades_kl,
    trades_loss,
    trades_pgd,
)
from robust.training.trades import START_STD
from robust.utils import seed_everything
from tests.markers import requires_cuda
from tests.nets import TinyNet, accuracy
from tests.training.conftest import ARGS, split


@pytest.fixture
def tiny() -> nn.Module:
    """A fixed tiny conv net on 1×8×8 inputs, 5 classes."""
    seed_everything(0)
    return TinyNet(1, 8, 8)


class Linear(nn.Module):
    """A linear model on flattened inputs that records the mode of every forward pass."""

    def __init__(self, n_in: int = 64, n_out: int = 10) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.modes: list[bool] = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.linear(x.flatten(1))


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---- the loss ---------------------------------------------------------------------------------


def test_kl_of_a_hand_computed_case() -> None:
    """p = (1/2, 1/2), q = (1/4, 3/4): KL(p ‖ q) = ½ ln 2 + ½ ln(2/3) = ½ ln(4/3)."""
    logits = torch.zeros(1, 2)
    logits_adv = torch.tensor([[0.0, math.log(3)]])
    assert trades_kl(logits, logits_adv).item() == pytest.approx(0.5 * math.log(4 / 3))
    assert trades_kl(logits, logits).item() == 0


def test_loss_agrees_with_the_reference_formula(tiny) -> None:
    """CE + β · KLDivLoss(log_softmax(f(x')), softmax(f(x)), sum) / batch size, the reference's
    reduction, with the gradient flowing into both the clean and the perturbed logits."""
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    x_adv = torch.rand(x.shape, generator=torch.Generator().manual_seed(2))  # far: a large KL

    loss = trades_loss(tiny(x), tiny(x_adv), y, beta=6.0)
    ours = torch.autograd.grad(loss, list(tiny.parameters()))

    logits, logits_adv = tiny(x), tiny(x_adv)
    kl_sum = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits, 1), reduction="sum")
    expected = F.cross_entropy(logits, y) + 6.0 * kl_sum / len(x)
    theirs = torch.autograd.grad(expected, list(tiny.parameters()))

    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)
    # the KL term by its definition, Σ p (log p − log q) / N, in float64
    log_p, log_q = F.log_softmax(logits.double(), 1), F.log_softmax(logits_adv.double(), 1)
    by_hand = (log_p.exp() * (log_p - log_q)).sum() / len(x)
    assert by_hand.item() > 1e-3
    assert trades_kl(logits, logits_adv).item() == pytest.approx(by_hand.item(), rel=1e-4)
    assert trades_loss(logits, logits_adv, y, beta=0).item() == pytest.approx(
        F.cross_entropy(logits, y).item()
    )


# ---- the inner maximisation ---------------------------------------------------------------------


def reference_trades_pgd(model, x, eps, steps, step_size, seed):
    """The reference's L∞ loop (trades.py), its start drawn from our seeded generator."""
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    criterion_kl = nn.KLDivLoss(reduction="sum")
    model.eval()
    x_adv = x.detach() + START_STD * noise
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    return torch.clamp(x_adv, 0.0, 1.0)


def test_inner_maximisation_is_the_reference_loop(tiny, ds) -> None:
    x = ds.test.x[:40]
    ours = trades_pgd(tiny, x, 0.2, steps=5, step_size=0.05, seed=3)
    theirs = reference_trades_pgd(tiny, x, 0.2, 5, 0.05, seed=3)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_inner_maximisation_beats_random_corners_of_the_ball(tiny, ds) -> None:
    x = ds.test.x[:64]
    x_adv = trades_pgd(tiny, x, 0.2, steps=10, seed=0)
    corner = (x + 0.2 * torch.randn_like(x).sign()).clamp(0, 1)
    with torch.no_grad():
        assert trades_kl(tiny(x), tiny(x_adv)) > 3 * trades_kl(tiny(x), tiny(corner))


@settings(max_examples=25, deadline=None)
@given(
    eps=st.one_of(st.just(0.0), st.floats(1e-4, 1)),
    steps=st.integers(1, 4),
    step_scale=st.floats(0.1, 3),
    n=st.integers(1, 9),
    seed=st.integers(0, 2**31),
)
def test_result_stays_within_eps_and_in_the_unit_box(eps, steps, step_scale, n, seed) -> None:
    seed_everything(0)
    model = TinyNet(1, 4, 4)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)
    x[0, 0, 0] = torch.tensor([0.0, 1.0, 0.0005, 0.9995])  # at and near the box's faces
    step_size = step_scale * eps / steps if eps > 0 else None
    x_adv = trades_pgd(model, x, eps, steps, step_size, seed=seed, batch_size=4)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1


def test_zero_eps_returns_the_inputs(tiny, ds) -> None:
    x = ds.test.x[:8]
    assert torch.equal(trades_pgd(tiny, x, 0.0, steps=3), x)


def test_seeded_runs_repeat_exactly_and_seeds_differ(tiny, ds) -> None:
    x = ds.test.x[:50]
    first = trades_pgd(tiny, x, 0.1, steps=2, seed=7)
    assert torch.equal(trades_pgd(tiny, x, 0.1, steps=2, seed=7), first)
    assert not torch.equal(trades_pgd(tiny, x, 0.1, steps=2, seed=8), first)


def test_result_does_not_depend_on_batch_size(ds) -> None:
    seed_everything(0)
    model, x = Linear(), ds.test.x[:50]
    whole = trades_pgd(model, x, 0.1, steps=3, seed=2)
    assert torch.equal(trades_pgd(model, x, 0.1, steps=3, seed=2, batch_size=7), whole)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_model_mode_grads_input_and_global_rng_are_untouched(ds, training) -> None:
    seed_everything(0)
    model = Linear().train(training)
    model.linear.bias.grad = torch.full((10,), 0.5)  # a gradient the caller accumulated
    x = ds.test.x[:16]
    x_before = x.clone()
    torch.manual_seed(9)
    expected = torch.rand(3)
    torch.manual_seed(9)
    trades_pgd(model, x, 0.1, steps=3)
    assert torch.equal(torch.rand(3), expected)  # its own generator, not the global one
    assert model.training is training
    assert model.modes and not any(model.modes)  # every forward pass in eval mode
    assert model.linear.weight.grad is None
    assert torch.equal(model.linear.bias.grad, torch.full((10,), 0.5))
    assert torch.equal(x, x_before)


def test_mode_is_restored_when_the_model_raises() -> None:
    class Broken(nn.Linear):
        def forward(self, x):
            raise RuntimeError("broken")

    model = Broken(4, 2).train()
    with pytest.raises(RuntimeError, match="broken"):
        trades_pgd(model, torch.rand(2, 4), 0.1)
    assert model.training


@requires_cuda
def test_runs_on_cuda_like_on_the_cpu(tiny, ds) -> None:
    x = ds.test.x[:64]
    on_cpu = trades_pgd(tiny, x, 0.2, steps=3, seed=1)
    on_gpu = trades_pgd(tiny.cuda(), x.cuda(), 0.2, steps=3, seed=1)
    assert on_gpu.device.type == "cuda"
    assert float((on_gpu - x.cuda()).abs().max()) <= 0.2 + 1e-6
    assert float((on_gpu.cpu() - on_cpu).abs().gt(1e-4).float().mean()) < 0.01  # rare sign flips


# ---- TRADES training ----------------------------------------------------------------------------


def test_history_holds_the_objective_and_its_terms(ds, small) -> None:
    train, val = small
    seed_everything(0)
    model = build("digits_cnn", ds.input_shape, ds.num_classes)
    attack = trades_attack(0.3, steps=2)
    history = adversarial_fit(
        model, train, val, attack=attack, objective="trades", beta=2.0, progress=False, **ARGS
    )
    assert attack.calls == 2 * 7  # every batch of both epochs
    assert set(history[0]) == {
        "train_loss", "train_accuracy", "train_clean_loss", "train_adversarial_loss",
        "train_adversarial_accuracy", "train_attack_s", "val_loss", "val_accuracy",
    }  # fmt: skip
    for h in history:
        assert h["train_loss"] == pytest.approx(
            h["train_clean_loss"] + 2.0 * h["train_adversarial_loss"]
        )
        assert h["train_adversarial_loss"] > 0


def test_beta_zero_is_clean_training(ds, small) -> None:
    """With β = 0 the KL term has no weight: the weights of fit, though x' is still made."""
    train, _ = small
    seed_everything(0)
    a, b = Linear(), Linear()
    b.load_state_dict(a.state_dict())
    attack = trades_attack(0.3, steps=2)
    adversarial_fit(
        a, train, attack=attack, objective="trades", beta=0.0, seed=3, progress=False, **ARGS
    )
    fit(b, train, seed=3, progress=False, **ARGS)
    assert attack.calls == 2 * 7
    assert same_weights(a, b)


def test_seeded_trades_training_repeats_exactly(ds, small) -> None:
    train, val = small

    def run():
        seed_everything(0)
        model = build("digits_cnn", ds.input_shape, ds.num_classes)
        history = adversarial_fit(
            model, train, val, attack=trades_attack(0.2, 2, seed=4), objective="trades",
            progress=False, **ARGS,
        )  # fmt: skip
        return model, [{k: v for k, v in h.items() if k != "train_attack_s"} for h in history]

    (a, ha), (b, hb) = run(), run()
    assert ha == hb and same_weights(a, b)


def test_trades_attack_gives_each_call_its_own_start(tiny, ds) -> None:
    x, y = ds.test.x[:32], ds.test.y[:32]
    attack = trades_attack(0.2, steps=2, seed=5)
    first, second = attack(tiny, x, y), attack(tiny, x, y)
    assert attack.calls == 2 and not torch.equal(first, second)
    assert torch.equal(first, trades_pgd(tiny, x, 0.2, 2, seed=5 * 1_000_003))
    assert torch.equal(second, trades_pgd(tiny, x, 0.2, 2, seed=5 * 1_000_003 + 1))


def test_trades_training_raises_pgd_robust_accuracy(ds) -> None:
    """3 epochs on 600 digits: TRADES (ε = 0.2, 3 steps, β = 6) vs clean training, both from
    the same initial weights, under PGD(10) at ε = 0.2 on the test split."""
    train = split(ds.train.x[:600], ds.train.y[:600])
    args = {**ARGS, "epochs": 3, "lr": 3e-3}

    def robust_accuracy(model):
        return accuracy(model.eval(), pgd(model, ds.test.x, ds.test.y, 0.2, steps=10), ds.test.y)

    seed_everything(0)
    clean = build("digits_cnn", ds.input_shape, ds.num_classes)
    seed_everything(0)
    trades = build("digits_cnn", ds.input_shape, ds.num_classes)
    fit(clean, train, progress=False, **args)
    adversarial_fit(
        trades, train, attack=trades_attack(0.2, steps=3), objective="trades", progress=False,
        **args,
    )  # fmt: skip
    assert accuracy(trades.eval(), ds.test.x, ds.test.y) > 0.8
    assert robust_accuracy(trades) > robust_accuracy(clean) + 0.15


# ---- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"eps": -0.1}, r"eps must be a finite number of at least 0", id="eps<0"),
        pytest.param({"eps": 1.5}, r"eps must be at most 1,", id="eps>1"),
        pytest.param(
            {"steps": 0}, r"steps must be an integer of at least 1, .*steps=0", id="steps"
        ),
        pytest.param({"step_size": 0.0}, r"step_size must be .* greater than 0", id="step=0"),
        pytest.param({"step_size": math.inf}, r"step_size must be a finite", id="step=inf"),
        pytest.param(
            {"seed": -1}, r"seed must be a non-negative integer, but got seed=-1", id="seed"
        ),
        pytest.param(
            {"batch_size": 0}, r"batch_size must be an integer of at least 1", id="batch"
        ),
    ],
)
def test_bad_attack_arguments(tiny, kwargs, message) -> None:
    kwargs = {"eps": 0.1, **kwargs}
    with pytest.raises(ConfigError, match=message):
        trades_pgd(tiny, torch.rand(2, 1, 8, 8), **kwargs)
    with pytest.raises(ConfigError, match=message):
        trades_attack(**kwargs)


def test_bad_inputs(tiny) -> None:
    with pytest.raises(ConfigError, match=r"x must lie in \[0, 1\], but got values in \[0, 2\]"):
        trades_pgd(tiny, torch.tensor([0.0, 2.0]).repeat(32).view(1, 1, 8, 8), 0.1)
    with pytest.raises(ConfigError, match=r"x must be a float tensor .* shape \(3,\)"):
        trades_pgd(tiny, torch.rand(3), 0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"objective": "mart"}, r"objective must be one of mixed, trades", id="obj"),
        pytest.param(
            {"objective": "trades", "alpha": 0.5},
            r"alpha weighs the mixed objective only .* but got alpha=0.5",
            id="alpha-with-trades",
        ),
        pytest.param(
            {"beta": 6.0}, r"beta weighs the KL term .* but got beta=6.0", id="beta-with-mixed"
        ),
        pytest.param(
            {"objective": "trades", "beta": -1.0},
            r"beta must be a finite number of at least 0, but got beta=-1.0",
            id="beta<0",
        ),
        pytest.param({"objective": "trades", "beta": math.nan}, r"beta=nan", id="beta-nan"),
        pytest.param({"objective": "trades", "beta": True}, r"beta=True", id="beta-bool"),
    ],
)
def test_bad_objective_arguments(ds, small, kwargs, message) -> None:
    train, _ = small
    with pytest.raises(ConfigError, match=message):
        adversarial_fit(
            Linear(), train, attack=trades_attack(0.1), progress=False, **ARGS, **kwargs
        )


def test_loss_refuses_a_negative_beta() -> None:
    logits, y = torch.zeros(1, 2), torch.zeros(1, dtype=torch.long)
    with pytest.raises(ConfigError, match=r"beta must be a finite number of at least 0"):
        trades_loss(logits, logits, y, beta=-1)
