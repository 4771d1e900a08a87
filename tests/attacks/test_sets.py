"""Crafting a split's adversarial set (robust/attacks/sets.py): one spec over every input, or a
preset's mix; the set's provenance and the throughput."""

from __future__ import annotations

import types

import pytest
import torch

from robust.attacks import AttackSpec, craft_set, dgn, guided_retraining, sets, spec_name
from robust.errors import ConfigError


@pytest.fixture(scope="module")
def xy(digits):
    return digits.test.x[:30], digits.test.y[:30]


@pytest.fixture
def clock(monkeypatch):
    """sets' clock: 10 s, then 12.5 s (so an attack takes 2.5 s)."""
    ticks = iter([10.0, 12.5])
    monkeypatch.setattr(sets, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))


def _gens(spec):
    return dgn.Generators({0: dgn.build("digits", (1, 8, 8))}, eps=0.3, spec=spec)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        pytest.param(lambda: AttackSpec("pgd", 0.3), "pgd_linf", id="pgd"),
        pytest.param(lambda: AttackSpec("fgsm", 1.0, "2"), "fgsm_l2", id="fgsm-l2"),
        pytest.param(lambda: AttackSpec("bim", 2.0, "L1"), "bim_l1", id="bim-l1"),
        pytest.param(
            lambda: AttackSpec("dgn", 0.3, generators=_gens({"loss": "susp"})),
            "dgn_susp",
            id="dgn",
        ),
        pytest.param(lambda: AttackSpec("dgn", 0.3, generators=_gens({})), "dgn_dgn", id="dgn-?"),
    ],
)
def test_spec_names(make, name):
    assert spec_name(make()) == name


def test_a_spec_attacks_every_input(trained, xy, clock):
    x, y = xy
    spec = AttackSpec("pgd", 0.2, steps=3, seed=2)
    adv, rate = craft_set(spec, trained, x, y)
    assert torch.equal(adv.x, spec.craft(trained, x, y))
    assert torch.equal(adv.y, y) and adv.index.tolist() == list(range(30))
    assert adv.attack.dtype == torch.int64 and adv.attack.tolist() == [0] * 30
    assert adv.names == ("pgd_linf",)
    assert rate == pytest.approx(30 / 2.5)


def test_misclassified_only_keeps_the_inputs_whose_prediction_changed(trained, xy):
    x, y = xy
    spec = AttackSpec("fgsm", 0.15)
    x_adv = spec.craft(trained, x, y)
    with torch.no_grad():
        changed = trained(x_adv).argmax(1) != trained(x).argmax(1)
    assert 0 < changed.sum() < 30  # both kinds are there
    adv, _ = craft_set(spec, trained, x, y, misclassified_only=True)
    assert adv.index.tolist() == torch.nonzero(changed)[:, 0].tolist()
    assert torch.equal(adv.x, x_adv[changed]) and torch.equal(adv.y, y[changed])
    assert adv.attack.tolist() == [0] * int(changed.sum())


def test_a_preset_is_its_mix_over_n_adv_drawn_inputs(trained, xy, clock):
    x, y = xy
    adv, rate = craft_set("guided_retraining", trained, x, y, n_adv=12, seed=5)
    want = guided_retraining(trained, x, y, 12, seed=5)
    assert all(torch.equal(v, want.tensors()[k]) for k, v in adv.tensors().items())
    assert adv.names == want.names
    assert rate == pytest.approx(12 / 2.5)


@pytest.mark.parametrize("n_adv", [None, 31, 1000])
def test_a_preset_draws_at_most_the_split(trained, xy, n_adv):
    x, y = xy
    adv, _ = craft_set("guided_retraining", trained, x, y, n_adv=n_adv)
    assert sorted(adv.index.tolist()) == list(range(30))


@pytest.mark.parametrize("attack", ["guided_retraining", AttackSpec("bim", 0.1, steps=2)])
def test_batch_size_reaches_the_attack(trained, xy, attack, batch_sizes):
    x, y = xy
    with batch_sizes(trained) as sizes:
        craft_set(attack, trained, x, y, n_adv=12, batch_size=4)
    assert sizes and max(sizes) <= 4


def test_an_unknown_preset_is_refused(trained, xy):
    with pytest.raises(
        ConfigError,
        match=r"^attack must be an AttackSpec or one of guided_retraining, but got 'x'$",
    ):
        craft_set("x", trained, *xy)
