"""dgn.train's contract beyond what the generator tests cover: seed 004's defaults, errors that
name the bad argument, what the spec records, the epoch means in the history, that a step
moves the weights, and ε reaching the spectra of the ``susp`` loss."""

from __future__ import annotations

import inspect

import pytest
import torch

from robust.attacks import dgn
from robust.errors import ConfigError


@pytest.fixture(scope="module")
def small(digits):
    """Four classes of digits, 12 inputs each (batches of 5 make three steps per epoch)."""
    keep = torch.cat([torch.nonzero(digits.train.y == c)[:12, 0] for c in (0, 1, 2, 3)])
    return digits.train.x[keep], digits.train.y[keep]


def test_defaults_are_seed_004_s():
    """Adam at 1e-3 for 50 epochs in batches of 100 (notes §3), the nce loss, Tarantula with
    D*'s star 2, activations above 0 as hits, a progress bar; not the seed's: FGSM spectra and
    training through the ε-clip."""
    defaults = {
        n: p.default for n, p in inspect.signature(dgn.train).parameters.items()
        if p.default is not inspect.Parameter.empty
    }  # fmt: skip
    assert defaults == {
        "loss": "nce", "epochs": 50, "lr": 1e-3, "batch_size": 100, "architecture": "auto",
        "classes": None, "k": None, "rule": "epsilon", "measure": "tarantula", "star": 2.0,
        "threshold": 0.0, "spectrum_inputs": "noise", "clip": "straight_through", "seed": 0,
        "on_epoch": None,
        "progress": True, "init": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0.0}, "eps must be greater than 0, but got eps=0.0"),
        ({"lr": -1.0}, "lr must be greater than 0, but got lr=-1.0"),
        ({"epochs": 0}, "epochs must be an integer of at least 1, but got epochs=0"),
        ({"batch_size": 0}, "batch_size must be an integer of at least 1, but got batch_size=0"),
        (
            {"spectrum_inputs": "pgd"},
            "spectrum_inputs must be one of fgsm, noise, clean, but got spectrum_inputs='pgd'",
        ),
        (
            {"clip": "none"},
            "clip must be one of straight_through, tanh, generation, but got clip='none'",
        ),
    ],
)
def test_bad_arguments_are_named(trained, small, kwargs, message):
    args = {"eps": 0.3, "epochs": 1, "progress": False, **kwargs}
    with pytest.raises(ConfigError) as e:
        dgn.train(trained, *small, **args)
    assert str(e.value) == message


def test_the_spec_records_the_settings(trained, small):
    gens = dgn.train(
        trained, *small, "nce", eps=0.25, epochs=1, lr=2e-3, batch_size=5, seed=7,
        classes=[1, 3], progress=False, beta=2.0,
    )  # fmt: skip
    spec = gens.spec
    assert spec["num_classes"] == 4  # classes 0..3: the largest trained one + 1
    assert (spec["seed"], spec["epochs"], spec["lr"], spec["batch_size"]) == (7, 1, 2e-3, 5)
    assert spec["weights"] == {"alpha": 1.0, "beta": 2.0, "p_min": 0.01}
    assert (spec["clip"], spec["spectrum_inputs"]) == ("straight_through", "noise")
    assert (spec["architecture"], spec["input_shape"], spec["loss"]) == (
        "digits",
        [1, 8, 8],
        "nce",
    )
    assert (spec["rule"], spec["threshold"], spec["measure"]) == ("epsilon", 0.0, "tarantula")
    assert gens.classes == (1, 3)


def test_the_history_holds_each_epoch_s_mean_loss_over_its_steps(trained, small):
    """With a loss that is 2 + (its step number) the mean over an epoch's three steps is
    known exactly: 3 (steps 1, 2, 3), then 6 (4, 5, 6)."""
    steps = []

    @dgn.register_loss("counting_test")
    def counting(x, x_gen, ctx, *, alpha=1.0):
        if ctx.label == 0:
            steps.append(1)
        return alpha * x_gen.mean() * 0 + 1.0 + len(steps)

    try:
        gens = dgn.train(
            trained, *small, "counting_test", eps=0.3, epochs=2, batch_size=5, progress=False
        )
    finally:
        dgn.LOSSES.pop("counting_test", None)
    assert len(steps) == 6  # ceil(12 / 5) = 3 steps per epoch
    assert gens.history[0] == [3.0, 6.0]


def test_a_step_moves_the_weights_and_a_tiny_rate_barely(trained, small):
    x, y = small
    common = {"eps": 0.3, "epochs": 1, "batch_size": 5, "seed": 2, "progress": False}
    moved = dgn.train(trained, x, y, "nce", lr=1e-2, **common)
    still = dgn.train(trained, x, y, "nce", lr=1e-12, **common)
    for c in ("0", "3"):
        a, b = moved.nets[c].state_dict(), still.nets[c].state_dict()
        gap = max((a[k].float() - b[k].float()).abs().max().item() for k in a if "weight" in k)
        assert gap > 1e-3


def test_susp_spectra_use_the_training_eps(trained, small):
    """The suspicious units of spectrum_inputs=fgsm are those of FGSM at the training ε."""
    x, y = small
    gens = dgn.train(
        trained, x, y, "susp", eps=0.2, epochs=1, batch_size=5, k=4, spectrum_inputs="fgsm",
        progress=False,
    )  # fmt: skip
    suspicious = dgn.PROPERTIES["suspicious"]
    want = suspicious(trained, x, y, [0, 1, 2, 3], eps=0.2, k=4, spectrum_inputs="fgsm")
    other = suspicious(trained, x, y, [0, 1, 2, 3], eps=0.05, k=4, spectrum_inputs="fgsm")
    for c in range(4):
        got = gens.properties[c]["suspicious"]
        assert {n: v.tolist() for n, v in got.items()} == {
            n: v.tolist() for n, v in want[c].items()
        }
    assert any(
        {n: v.tolist() for n, v in want[c].items()} != {n: v.tolist() for n, v in other[c].items()}
        for c in range(4)
    )  # ε matters here


def test_register_loss_takes_exactly_the_documented_signatures():
    """Three positional parameters and keyword-only weights with number defaults are a loss;
    a positional fourth parameter or a weight without a number default is not."""

    def plain(x, x_gen, ctx):
        return x_gen.mean()

    def weighted(x, x_gen, ctx, *, alpha=2, beta=0.5):
        return x_gen.mean()

    def positional(x, x_gen, ctx, alpha=1.0):
        return x_gen.mean()

    def no_default(x, x_gen, ctx, *, alpha=None):
        return x_gen.mean()

    try:
        dgn.register_loss("plain_test")(plain)
        dgn.register_loss("weighted_test", needs=("suspicious",))(weighted)
        spec = dgn.LOSSES["weighted_test"]
        assert (spec.name, spec.weights, spec.needs) == (
            "weighted_test",
            {"alpha": 2.0, "beta": 0.5},
            ("suspicious",),
        )
        assert dgn.LOSSES["plain_test"].weights == {}
        with pytest.raises(ConfigError, match=r"^a DGN loss must be fn\(x, x_gen, ctx, \*"):
            dgn.register_loss("positional_test")(positional)
        with pytest.raises(ConfigError) as e:
            dgn.register_loss("no_default_test")(no_default)
        assert str(e.value) == "every DGN loss weight needs a number default, but got ['alpha']"
        assert "positional_test" not in dgn.LOSSES and "no_default_test" not in dgn.LOSSES
    finally:
        for name in ("plain_test", "weighted_test"):
            dgn.LOSSES.pop(name, None)
