"""The attack stage's DGN settings (robust/attacks/dgn/_settings.py, _defaults.py): what ``auto``
stands for, seed 004's schedules, and settings turned into dgn.train's arguments."""

from __future__ import annotations

import inspect

import pytest

from robust.attacks import dgn
from robust.errors import ConfigError


@pytest.mark.parametrize(
    ("dataset", "loss", "schedule"),
    [
        pytest.param("mnist", "lrp", (150, 1e-4, 100), id="mnist-lrp"),
        pytest.param("fashion", "nce", (100, 1e-4, 100), id="fashion-nce"),
        pytest.param("mnist", "susp", (600, 1e-5, 100), id="mnist-susp"),
        pytest.param("cifar10", "lrp", (80, 1e-4, 100), id="cifar-lrp"),
        pytest.param("cifar10", "nce", (100, 1e-4, 100), id="cifar-nce"),
        pytest.param("cifar10", "susp", (60, 1e-3, 128), id="cifar-susp"),
        pytest.param("digits", "susp", (100, 1e-3, 16), id="digits"),
        pytest.param("gtsrb", "nce", (50, 1e-3, 100), id="other-dataset"),
        pytest.param("mnist", "brighten", (50, 1e-3, 100), id="other-loss"),
    ],
)
def test_schedules_are_seed_004_s_where_it_has_one(dataset, loss, schedule):
    assert dgn.schedule_for(dataset, loss) == dgn.Schedule(*schedule)


def test_auto_settings_are_the_loss_defaults_and_the_dataset_schedule():
    assert dgn.resolve_settings("mnist", "susp", {}) == {
        "alpha": 0.8, "lam": 0.5, "gamma": 0.5,
        "dgn_epochs": 600, "dgn_lr": 1e-5, "dgn_batch_size": 100,
    }  # fmt: skip
    given = {"alpha": 2, "beta": None, "dgn_epochs": 3, "dgn_lr": None, "dgn_batch_size": 7}
    assert dgn.resolve_settings("cifar10", "nce", given) == {
        "alpha": 2.0, "beta": 1.0, "p_min": 0.01, "dgn_epochs": 3, "dgn_lr": 1e-4,
        "dgn_batch_size": 7,
    }  # fmt: skip
    assert dgn.resolve_settings("digits", "lrp", {"dgn_lr": 0.5}) == {
        "alpha": 0.5, "dgn_epochs": 100, "dgn_lr": 0.5, "dgn_batch_size": 16,
    }  # fmt: skip


def test_a_weight_the_loss_does_not_take_is_refused():
    with pytest.raises(ConfigError, match=r"^the nce loss takes the weights alpha, beta, p_min, "):
        dgn.resolve_settings("mnist", "nce", {"lam": 0.1, "gamma": None})


def test_train_options_are_train_s_arguments_with_its_defaults(trained, digits):
    """Settings the stage leaves out get dgn.train's own defaults, every option reaches
    training (the generators' spec records it), and only the weights that were given pass."""
    settings = {"loss": "nce", "eps": 0.25, "alpha": 3.0, "beta": None}
    settings |= {"dgn_epochs": 1, "dgn_lr": 2e-3, "dgn_batch_size": 32}
    options = dgn.train_options(settings)
    defaults = {
        name: p.default
        for name, p in inspect.signature(dgn.train).parameters.items()
        if name in ("architecture", "k", "measure", "star", "spectrum_inputs", "clip")
    }
    assert options == {
        "loss": "nce", "eps": 0.25, "epochs": 1, "lr": 2e-3, "batch_size": 32, "alpha": 3.0,
    } | defaults  # fmt: skip
    chosen = {"architecture": "fitting", "k": 4, "measure": "dstar", "star": 3.0}
    chosen |= {"spectrum_inputs": "clean", "lam": 0.1}
    options = dgn.train_options(settings | chosen | {"dgn_clip": "tanh"})
    assert {k: options[k] for k in chosen} == chosen and options["clip"] == "tanh"
    x, y = digits.train.x[:40], digits.train.y[:40]
    susp = {"loss": "susp", "alpha": None, "dgn_clip": "generation"}
    options = dgn.train_options(settings | chosen | susp)
    gens = dgn.train(trained, x, y, **options, progress=False)
    assert gens.eps == 0.25
    assert {k: gens.spec[k] for k in ("epochs", "lr", "batch_size", "loss")} == {
        "epochs": 1, "lr": 2e-3, "batch_size": 32, "loss": "susp",
    }  # fmt: skip
    assert {k: gens.spec[k] for k in chosen if k != "lam"} == {
        k: v for k, v in chosen.items() if k != "lam"
    }
    assert gens.spec["weights"] == {"alpha": 0.8, "lam": 0.1, "gamma": 0.5}
    assert gens.clip == "generation"


class _Recording(dict):
    """Settings that note which of them are read."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def test_training_names_every_setting_that_shapes_training():
    """A reused generators run brings every TRAINING setting along: so they must include all
    that train_options reads (eps aside, which generation uses too) and every loss weight."""
    settings = _Recording(loss="lrp", eps=0.1, dgn_epochs=1, dgn_lr=0.1, dgn_batch_size=1)
    dgn.train_options(settings)
    assert settings.read - {"eps"} <= set(dgn.TRAINING)
    assert set(dgn.WEIGHTS) <= settings.read
    assert all(set(spec.weights) <= set(dgn.WEIGHTS) for spec in dgn.LOSSES.values())
    assert "dgn_split" in dgn.TRAINING and "eps" not in dgn.TRAINING
