"""Robust-accuracy matrices (robust/evaluation/matrix.py) on the trained digits model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from robust import attacks, models
from robust.attacks import AttackSpec, dgn
from robust.errors import ConfigError, DataError
from robust.evaluation import adaptive_matrix, evaluate, plot_matrix, transfer_matrix
from robust.models import predict

EPS = 0.3


@pytest.fixture(scope="module")
def test_set(digits):
    return digits.test.x[:120], digits.test.y[:120]


@pytest.fixture(scope="module")
def untrained(digits):
    torch.manual_seed(1)
    return models.for_dataset(digits).eval()


def _acc(model, x, y) -> float:
    return int((predict(model, x).argmax(1) == y).sum()) / len(y)


def test_transfer_matrix_is_each_model_on_each_fixed_set(trained, untrained, digits, test_set):
    x, y = test_set
    x_fgsm = attacks.fgsm(trained, x, y, EPS)
    sets = {"clean": (digits.test.x, digits.test.y), "fgsm": (x_fgsm, y), "half": (x[:60], y[:60])}
    m = transfer_matrix({"original": trained, "other": untrained}, sets)
    assert isinstance(m, pd.DataFrame) and m.shape == (2, 3)
    assert list(m.index) == ["original", "other"] and list(m.columns) == ["clean", "fgsm", "half"]
    assert m.index.name == "model" and (m.dtypes == np.float64).all()
    assert m.loc["original", "clean"] == evaluate(trained, digits.test)["accuracy"]
    for row, model in (("original", trained), ("other", untrained)):
        for col, (xs, ys) in sets.items():
            assert m.loc[row, col] == _acc(model, xs, ys), (row, col)
    assert m.loc["original", "fgsm"] < m.loc["original", "clean"] - 0.5


def test_transfer_matrix_does_not_depend_on_the_batch_size(trained, test_set):
    x, y = test_set
    sets = {"clean": (x, y), "fgsm": (attacks.fgsm(trained, x, y, EPS), y)}
    small = transfer_matrix({"m": trained}, sets, batch_size=7)
    pd.testing.assert_frame_equal(small, transfer_matrix({"m": trained}, sets))


def test_adaptive_matrix_attacks_each_model_itself(trained, untrained, test_set):
    x, y = test_set
    specs = {
        "fgsm": AttackSpec("fgsm", EPS),
        "pgd": AttackSpec("pgd", EPS, steps=3, seed=4),
    }
    m = adaptive_matrix({"original": trained, "other": untrained}, x, y, specs)
    assert list(m.index) == ["original", "other"] and list(m.columns) == ["clean", "fgsm", "pgd"]
    for row, model in (("original", trained), ("other", untrained)):
        assert m.loc[row, "clean"] == _acc(model, x, y)
        assert m.loc[row, "fgsm"] == _acc(model, attacks.fgsm(model, x, y, EPS), y)
        x_pgd = attacks.pgd(model, x, y, EPS, steps=3, seed=4)
        assert m.loc[row, "pgd"] == _acc(model, x_pgd, y)
        assert m.loc[row, "pgd"] <= m.loc[row, "clean"]
    assert m.loc["original", "pgd"] < 0.2


def test_adaptive_matrix_without_clean_column_and_with_batches(trained, test_set):
    x, y = test_set
    specs = {"pgd": AttackSpec("pgd", EPS, steps=2)}
    m = adaptive_matrix({"m": trained}, x, y, specs, clean=False, batch_size=16)
    assert list(m.columns) == ["pgd"]
    assert m.loc["m", "pgd"] == adaptive_matrix({"m": trained}, x, y, specs).loc["m", "pgd"]


def test_matrices_leave_inputs_and_model_mode_untouched(trained, test_set):
    x, y = test_set
    x0 = x.clone()
    trained.train()
    try:
        adaptive_matrix({"m": trained}, x, y, {"fgsm": AttackSpec("fgsm", EPS)})
        transfer_matrix({"m": trained}, {"clean": (x, y)})
        assert trained.training
    finally:
        trained.eval()
    assert torch.equal(x, x0)


def test_adaptive_matrix_takes_bim(trained, test_set):
    x, y = test_set
    spec = AttackSpec("bim", EPS, steps=3)
    m = adaptive_matrix({"m": trained}, x, y, {"bim": spec}, clean=False)
    assert m.loc["m", "bim"] == _acc(trained, attacks.bim(trained, x, y, EPS, 3), y)


def test_matrices_check_their_inputs(trained, test_set):
    x, y = test_set
    with pytest.raises(ConfigError, match="models must map at least one row label"):
        transfer_matrix({}, {"clean": (x, y)})
    with pytest.raises(ConfigError, match="test_sets must map at least one column"):
        transfer_matrix({"m": trained}, {})
    with pytest.raises(DataError, match=r"test set 'bad' must hold .* 120 inputs and 119 labels"):
        transfer_matrix({"m": trained}, {"bad": (x, y[:-1])})
    with pytest.raises(DataError, match="0 inputs and 0 labels"):
        adaptive_matrix({"m": trained}, x[:0], y[:0], {})
    with pytest.raises(ConfigError, match="must not be labelled 'clean'"):
        adaptive_matrix({"m": trained}, x, y, {"clean": AttackSpec("fgsm", EPS)})
    with pytest.raises(ConfigError, match="at least one attack or clean=True"):
        adaptive_matrix({"m": trained}, x, y, {}, clean=False)
    gens = dgn.Generators({}, eps=EPS, spec={})
    with pytest.raises(ConfigError, match=r"^attacks must use one of fgsm, pgd, bim .*'dgn'$"):
        adaptive_matrix({"m": trained}, x, y, {"d": AttackSpec("dgn", EPS, generators=gens)})


def test_plot_matrix_writes_an_annotated_png_sized_to_the_matrix(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    small = pd.DataFrame([[0.9, 0.1]], index=["original"], columns=["clean", "pgd"])
    labels = [f"advtrain-dgn-nce-{i:08x}" for i in range(10)]
    big = pd.DataFrame(rng.random((10, 10)), index=labels, columns=labels)
    big.iloc[0, 0] = np.nan
    a = plot_matrix(small, tmp_path / "a" / "small.png", title="transfer")
    b = plot_matrix(big, tmp_path / "big.png")
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wa, ha = Image.open(a).size
    wb, hb = Image.open(b).size
    assert wb > wa and hb > ha and wb <= 1500 and hb <= 1200


def test_plot_matrix_rejects_an_empty_matrix(tmp_path):
    with pytest.raises(DataError, match="at least one row and column"):
        plot_matrix(pd.DataFrame(), tmp_path / "x.png")
