"""Tests of robust/training/adversarial.py."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from robust.attacks import AttackSpec, dgn, lp, pgd
from robust.errors import ConfigError, DataError
from robust.models import build
from robust.training import (
    adversarial_fit,
    dgn_attack,
    fgsm_attack,
    fit,
    online_attack,
    pgd_attack,
)
from robust.utils import seed_everything
from tests.training.conftest import ARGS, split


def make_model(ds) -> nn.Module:
    seed_everything(0)
    return build("digits_cnn", ds.input_shape, ds.num_classes)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def never(*_):
    raise AssertionError("the attack must not be called with alpha=1")


class Spy:
    """An online attack that records what it was given and returns 1 − x."""

    def __init__(self) -> None:
        self.calls: list[SimpleNamespace] = []

    def __call__(self, model, x, y):
        first = next(model.parameters())
        self.calls.append(SimpleNamespace(model=model, x=x.clone(), y=y.clone(), w=first.clone()))
        return 1 - x


# ---- α = 1 is clean training -----------------------------------------------------------------


@pytest.mark.parametrize("source", ["static", "online_batch", "online_epoch"])
def test_alpha_one_equals_clean_fit_exactly(ds, small, source) -> None:
    train, val = small
    reference, model = make_model(ds), make_model(ds)
    expected = fit(reference, train, val, seed=7, progress=False, **ARGS)
    kwargs = (
        {"x_adv": 1 - train.x}
        if source == "static"
        else {"attack": never, "every": source.removeprefix("online_")}
    )
    history = adversarial_fit(
        model, train, val, alpha=1.0, seed=7, progress=False, **ARGS, **kwargs
    )
    assert history == expected  # the same keys and the same numbers
    assert same_weights(model, reference)


def test_history_keys_with_mixed_loss(ds, small) -> None:
    train, val = small
    history = adversarial_fit(
        make_model(ds), train, val, attack=fgsm_attack(0.3), progress=False, **ARGS
    )
    assert len(history) == 2
    assert set(history[0]) == {
        "train_loss", "train_accuracy", "train_clean_loss", "train_adversarial_loss",
        "train_adversarial_accuracy", "train_attack_s", "val_loss", "val_accuracy",
    }  # fmt: skip
    h = history[-1]
    assert h["train_loss"] == pytest.approx(
        0.5 * h["train_clean_loss"] + 0.5 * h["train_adversarial_loss"]
    )
    assert h["train_adversarial_loss"] > h["train_clean_loss"]
    static = adversarial_fit(make_model(ds), train, x_adv=train.x.clone(), progress=False, **ARGS)
    assert "train_attack_s" not in static[0] and "train_adversarial_loss" in static[0]


# ---- static pairing ---------------------------------------------------------------------------


class Recorder(nn.Module):
    """A linear model without dropout that records every input batch it sees."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.linear(x.flatten(1))


def test_static_pairs_stay_together_under_shuffling(ds, small) -> None:
    train, _ = small
    seed_everything(0)
    model = Recorder(64, 10)
    adversarial_fit(model, train, x_adv=1 - train.x, seed=3, progress=False, **ARGS)
    clean, adv = model.seen[0::2], model.seen[1::2]  # clean pass, then adversarial pass
    assert len(clean) == len(adv) == 2 * 7  # ceil(200 / 32) batches per epoch
    for xb, xb_adv in zip(clean, adv, strict=True):
        assert torch.equal(xb_adv, 1 - xb)
    first_epoch = torch.cat(clean[:7])
    assert not torch.equal(first_epoch, train.x)  # shuffled ...
    keys = lambda x: sorted(map(tuple, x.flatten(1).tolist()))  # noqa: E731
    assert keys(first_epoch) == keys(train.x)  # ... each input once per epoch


def test_static_copy_of_the_clean_inputs_equals_clean_training(ds, small) -> None:
    """With x_adv = x and no dropout, 0.5·CE + 0.5·CE = CE: only paired batches give that."""
    train, _ = small
    seed_everything(0)
    a, b = Recorder(64, 10), Recorder(64, 10)
    b.load_state_dict(a.state_dict())
    adversarial_fit(a, train, x_adv=train.x.clone(), alpha=0.5, seed=3, progress=False, **ARGS)
    fit(b, train, seed=3, progress=False, **ARGS)
    assert same_weights(a, b)


# ---- online -----------------------------------------------------------------------------------


def test_online_every_batch_attacks_each_batch_with_the_current_weights(ds, small) -> None:
    train, _ = small
    model, spy = make_model(ds), Spy()
    initial = next(model.parameters()).clone()
    adversarial_fit(model, train, attack=spy, every="batch", seed=3, progress=False, **ARGS)
    assert len(spy.calls) == 2 * 7
    assert all(c.model is model for c in spy.calls)
    assert torch.equal(spy.calls[0].w, initial)
    for before, after in zip(spy.calls, spy.calls[1:], strict=False):
        assert not torch.equal(before.w, after.w)  # one optimizer step between two calls
    sizes = [len(c.x) for c in spy.calls]
    assert sizes == [32] * 6 + [8] + [32] * 6 + [8]
    order = torch.randperm(200, generator=torch.Generator().manual_seed(3))
    assert torch.equal(spy.calls[0].x, train.x[order[:32]])  # the batch being trained on
    assert torch.equal(spy.calls[0].y, train.y[order[:32]])


def test_online_every_epoch_attacks_the_training_set_once_per_epoch(ds, small) -> None:
    train, _ = small
    model, spy = make_model(ds), Spy()
    weights = []
    adversarial_fit(
        model,
        train,
        attack=spy,
        every="epoch",
        progress=False,
        on_epoch=lambda e, m: weights.append(next(model.parameters()).clone()),
        **{**ARGS, "epochs": 3},
    )
    assert len(spy.calls) == 3
    for call in spy.calls:
        assert torch.equal(call.x, train.x) and torch.equal(call.y, train.y)
    # each epoch's attack sees the weights the previous epoch ended with
    assert torch.equal(spy.calls[1].w, weights[0]) and torch.equal(spy.calls[2].w, weights[1])


def test_online_static_equivalence_for_a_fixed_attack(ds, small) -> None:
    """An online attack that ignores the model (1 − x) equals the static set 1 − x."""
    train, val = small
    a, b = make_model(ds), make_model(ds)
    ha = adversarial_fit(a, train, val, x_adv=1 - train.x, seed=2, progress=False, **ARGS)
    hb = adversarial_fit(
        b, train, val, attack=Spy(), every="batch", seed=2, progress=False, **ARGS
    )
    assert same_weights(a, b)
    assert [{k: v for k, v in h.items() if k != "train_attack_s"} for h in hb] == ha


def test_alpha_zero_trains_on_adversarial_inputs_only(ds, small) -> None:
    train, _ = small
    seed_everything(0)
    a, b = Recorder(64, 10), Recorder(64, 10)
    b.load_state_dict(a.state_dict())
    adversarial_fit(a, train, x_adv=1 - train.x, alpha=0.0, seed=1, progress=False, **ARGS)
    fit(b, split(1 - train.x, train.y), seed=1, progress=False, **ARGS)
    assert same_weights(a, b)


def test_global_rng_and_model_mode_are_left_alone(ds, small) -> None:
    train, _ = small
    model = make_model(ds).eval()
    torch.manual_seed(9)
    expected = torch.rand(3)
    torch.manual_seed(9)
    adversarial_fit(model, train, attack=pgd_attack(0.1, steps=2), progress=False, **ARGS)
    assert torch.equal(torch.rand(3), expected)
    assert not model.training


def test_seeded_online_pgd_training_repeats_exactly(ds, small) -> None:
    train, val = small
    a, b = make_model(ds), make_model(ds)
    ha = adversarial_fit(a, train, val, attack=pgd_attack(0.2, 3, seed=4), progress=False, **ARGS)
    hb = adversarial_fit(b, train, val, attack=pgd_attack(0.2, 3, seed=4), progress=False, **ARGS)
    drop = lambda h: [{k: v for k, v in e.items() if k != "train_attack_s"} for e in h]  # noqa: E731
    assert drop(ha) == drop(hb) and same_weights(a, b)


# ---- the online attacks -----------------------------------------------------------------------


def test_pgd_attack_gives_each_call_its_own_random_start(trained, ds) -> None:
    x, y = ds.test.x[:64], ds.test.y[:64]
    attack = pgd_attack(0.2, steps=2, seed=5)
    first, second = attack(trained, x, y), attack(trained, x, y)
    assert attack.calls == 2
    assert not torch.equal(first, second)
    assert torch.equal(first, pgd(trained, x, y, 0.2, 2, seed=5 * 1_000_003))
    assert torch.equal(pgd_attack(0.2, steps=2, seed=5)(trained, x, y), first)
    assert float(lp(first - x, "inf").max()) <= 0.2 + 1e-6


def test_fgsm_attack_is_fgsm(trained, ds) -> None:
    from robust.attacks import fgsm

    x, y = ds.test.x[:64], ds.test.y[:64]
    assert torch.equal(fgsm_attack(0.3)(trained, x, y), fgsm(trained, x, y, 0.3))


def test_online_attack_crafts_its_spec_with_a_seed_per_call(trained, ds) -> None:
    x, y = ds.test.x[:64], ds.test.y[:64]
    spec = AttackSpec("pgd", 0.2, "2", steps=2, restarts=2, seed=5)
    attack = online_attack(spec, batch_size=16)
    first, second = attack(trained, x, y), attack(trained, x, y)
    assert attack.calls == 2 and attack.spec is spec
    for call, x_adv in enumerate((first, second)):
        again = dataclasses.replace(spec, seed=5 * 1_000_003 + call)
        assert torch.equal(x_adv, again.craft(trained, x, y, batch_size=16))
    bim = online_attack(AttackSpec("bim", 0.2, steps=2))
    assert torch.equal(bim(trained, x, y), bim(trained, x, y))  # no random start
    last = pgd(trained, x, y, 0.2, 2, random_start=False, keep="last")
    assert torch.equal(bim(trained, x, y), last)


def test_online_attack_takes_gradient_specs_only(generators) -> None:
    with pytest.raises(ConfigError, match=r"^spec must be an AttackSpec of .*got method='dgn'$"):
        online_attack(AttackSpec("dgn", generators.eps, generators=generators))
    with pytest.raises(ConfigError, match=r"^spec must be an AttackSpec of .*got str$"):
        online_attack("pgd")


@pytest.fixture(scope="module")
def generators(trained, ds):
    return dgn.train(
        trained, ds.train.x, ds.train.y, "nce", eps=0.3, epochs=1, seed=0, progress=False
    )


def test_dgn_attack_continues_training_the_generators(trained, ds, generators) -> None:
    losses = []
    attack = dgn_attack(generators, epochs=2, on_train=lambda *a: losses.append(a))
    x_adv = attack(trained, ds.train.x, ds.train.y)
    assert attack.calls == 1 and attack.generators is not generators
    assert len(losses) == 2 * 10  # (call, class, DGN epoch, loss) per class and epoch
    assert [(call, epoch) for call, c, epoch, _ in losses if c == 0] == [(1, 1), (1, 2)]
    assert float((x_adv - ds.train.x).abs().max()) <= 0.3 + 1e-6
    # it starts from the given weights: with a tiny learning rate they barely move
    slow = dgn.Generators(
        generators.nets, eps=generators.eps, spec=generators.spec | {"lr": 1e-12}
    )
    attack = dgn_attack(slow, epochs=1)
    attack(trained, ds.train.x, ds.train.y)
    after = dict(attack.generators.nets.named_parameters())
    for k, v in generators.nets.named_parameters():  # (batch-norm statistics do move)
        assert torch.allclose(after[k], v, atol=1e-6), k


def test_dgn_attack_needs_every_epoch(ds, small, generators) -> None:
    train, _ = small
    with pytest.raises(ConfigError, match="once per epoch: use every='epoch'"):
        adversarial_fit(
            make_model(ds), train, attack=dgn_attack(generators), every="batch", **ARGS
        )


def test_online_dgn_training_runs_per_epoch(trained, ds, small, generators) -> None:
    train, _ = small
    attack = dgn_attack(generators, epochs=1)
    history = adversarial_fit(
        make_model(ds), train, attack=attack, every="epoch", progress=False, **ARGS
    )
    assert attack.calls == 2 and len(history) == 2


# ---- behaviour --------------------------------------------------------------------------------


def test_pgd_training_raises_pgd_robust_accuracy(trained, ds) -> None:
    """Original (8 clean epochs) vs 3 epochs of online PGD(3) training from a fresh model."""
    model = make_model(ds)
    adversarial_fit(
        model, ds.train, attack=pgd_attack(0.2, steps=3), progress=False, **{**ARGS, "epochs": 3}
    )

    def robust_accuracy(m):
        x_adv = pgd(m, ds.test.x, ds.test.y, 0.2, steps=10)
        with torch.no_grad():
            return float((m.eval()(x_adv).argmax(1) == ds.test.y).float().mean())

    with torch.no_grad():
        clean = float((model.eval()(ds.test.x).argmax(1) == ds.test.y).float().mean())
    assert clean > 0.85
    assert robust_accuracy(model) > robust_accuracy(trained) + 0.15


# ---- bad arguments ----------------------------------------------------------------------------


BAD = [
    ("neither", lambda x: {}, ConfigError, "exactly one of x_adv .* but got neither"),
    ("both", lambda x: {"x_adv": x, "attack": never}, ConfigError, "but got both"),
    ("short", lambda x: {"x_adv": x[:10]}, ConfigError, r"shape \(200, 1, 8, 8\), but got"),
    ("dtype", lambda x: {"x_adv": x.long()}, ConfigError, "x_adv must be a float tensor"),
    ("callable", lambda x: {"attack": 3}, ConfigError, "attack must be callable"),
    ("every", lambda x: {"attack": never, "every": "step"}, ConfigError, "every must be one of"),
    ("alpha>1", lambda x: {"x_adv": x, "alpha": 1.5}, ConfigError, r"in \[0, 1\], but got"),
    ("alpha<0", lambda x: {"x_adv": x, "alpha": -0.1}, ConfigError, "alpha=-0.1"),
    ("alpha-nan", lambda x: {"x_adv": x, "alpha": float("nan")}, ConfigError, "alpha=nan"),
    ("alpha-bool", lambda x: {"x_adv": x, "alpha": True}, ConfigError, "alpha=True"),
    ("epochs", lambda x: {"x_adv": x, "epochs": 0}, ConfigError, "epochs must be an integer"),
    ("seed", lambda x: {"x_adv": x, "seed": -1}, ConfigError, "seed must be a non-negative"),
    ("shape-out", lambda x: {"attack": lambda m, xb, y: xb[:1]}, DataError, "must return a"),
]


@pytest.mark.parametrize(
    ("make_kwargs", "error", "message"), [pytest.param(*b[1:], id=b[0]) for b in BAD]
)
def test_bad_arguments(ds, small, make_kwargs, error, message) -> None:
    train, _ = small
    with pytest.raises(error, match=message):
        adversarial_fit(make_model(ds), train, progress=False, **{**ARGS, **make_kwargs(train.x)})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: fgsm_attack(-0.1), "eps must be a finite number", id="fgsm-eps"),
        pytest.param(lambda: fgsm_attack(0.1, "3"), "norm must be one of", id="fgsm-norm"),
        pytest.param(lambda: pgd_attack(0.1, steps=0), "steps must be an integer", id="steps"),
        pytest.param(lambda: pgd_attack(0.1, step_size=0), "step_size must be", id="step"),
        pytest.param(lambda: pgd_attack(0.1, seed=-2), "seed must be", id="seed"),
        pytest.param(lambda: dgn_attack("gens"), "generators must be", id="generators"),
    ],
)
def test_bad_attack_arguments(make, message) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_dgn_attack_bad_epochs_and_route(generators) -> None:
    with pytest.raises(ConfigError, match="epochs must be an integer of at least 1"):
        dgn_attack(generators, epochs=0)
    with pytest.raises(ConfigError, match="route must be one of label, prediction"):
        dgn_attack(generators, route="random")


def test_dgn_train_refuses_an_init_of_another_architecture(trained, ds, generators) -> None:
    with pytest.raises(ConfigError, match="init must hold fitting generators"):
        dgn.train(
            trained, ds.train.x, ds.train.y, "nce", eps=0.3, epochs=1, architecture="fitting",
            init=generators, progress=False,
        )  # fmt: skip
