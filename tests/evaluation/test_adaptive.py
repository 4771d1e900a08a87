"""Adaptive evaluation (robust/evaluation/adaptive.py): each attack by name equals the attack
function it names, the worst case is an input-wise AND, the breakdowns add up, adaptive DGN
generators are trained against the attacked model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robust import attacks
from robust.attacks import dgn
from robust.errors import ConfigError, DataError
from robust.evaluation import (
    ADAPTIVE,
    WORST,
    Adaptive,
    AdaptiveDGN,
    adaptive_matrix,
    evaluate_adaptive,
    wilson,
)
from robust.evaluation.matrix import interval_table, matrix_cells
from tests.nets import TinyNet, accuracy

EPS = 0.12  # digits: the trained model keeps ~45 % under AutoAttack here


@pytest.fixture(scope="module")
def inputs(digits):
    return digits.test.x[:80], digits.test.y[:80]


def _autoattack(model, x, y):
    return attacks.autoattack(model, x, y, EPS, steps=5, n_queries=20, seed=3).x_adv


@pytest.mark.parametrize(
    ("name", "direct"),
    [
        ("fgsm", lambda m, x, y: attacks.fgsm(m, x, y, EPS)),
        ("pgd", lambda m, x, y: attacks.pgd(m, x, y, EPS, 5, seed=3)),
        ("apgd-ce", lambda m, x, y: attacks.apgd(m, x, y, EPS, steps=5, seed=3)),
        (
            "apgd-t",
            lambda m, x, y: attacks.apgd(m, x, y, EPS, loss="dlr", targeted=True, steps=5, seed=3),
        ),
        ("fab-t", lambda m, x, y: attacks.fab(m, x, y, EPS, steps=5, seed=3)),
        ("square", lambda m, x, y: attacks.square(m, x, y, EPS, n_queries=20, seed=3)),
        (
            "autoattack",
            lambda m, x, y: attacks.autoattack(m, x, y, EPS, steps=5, n_queries=20, seed=3).x_adv,
        ),
        (
            "autoattack-rand",
            lambda m, x, y: attacks.autoattack(m, x, y, EPS, "inf", "rand", steps=5, seed=3).x_adv,
        ),
    ],
)
def test_each_name_crafts_exactly_the_attack_it_names(trained, inputs, name, direct):
    x, y = inputs
    attack = Adaptive(name, EPS, steps=5, n_queries=20, seed=3)
    ours = attack.craft(trained, x, y)
    assert torch.equal(ours, direct(trained, x, y))
    if name == "autoattack-rand":
        assert attack.describe()["attacks"] == "apgd-ce,apgd-dlr"
        assert attack.describe()["eot_iter"] == 20 and "n_queries" not in attack.describe()


def test_the_worst_case_is_an_input_wise_and_and_breakdowns_add_up(trained, inputs):
    x, y = inputs
    chosen = {"fgsm": Adaptive("fgsm", EPS), "apgd-ce": Adaptive("apgd-ce", EPS, steps=10)}
    result = evaluate_adaptive({"m": trained}, x, y, chosen)
    correct = {k: trained(a.craft(trained, x, y)).argmax(1) == y for k, a in chosen.items()}
    clean = trained(x).argmax(1) == y
    robust = clean & correct["fgsm"] & correct["apgd-ce"]
    row = result.matrix.loc["m"]
    assert list(result.matrix.columns) == ["clean", "fgsm", "apgd-ce", WORST]
    assert row["clean"] == int(clean.sum()) / 80 == pytest.approx(accuracy(trained, x, y))
    assert row[WORST] == int(robust.sum()) / 80 <= min(row["fgsm"], row["apgd-ce"])
    by = result.worst_by["m"]
    assert torch.equal(by == 0, robust) and torch.equal(by == -1, ~clean)
    assert torch.equal(by == 1, clean & ~correct["fgsm"])  # the first attack that fooled it
    assert torch.equal(by == 2, clean & correct["fgsm"] & ~correct["apgd-ce"])
    sizes = np.bincount(y.numpy(), minlength=10)
    assert (result.class_sizes == sizes).all()
    per_class = result.per_class.loc["m"].to_numpy()
    assert float((per_class * sizes).sum()) == pytest.approx(int(robust.sum()))
    conf = result.confusion["m"]
    assert conf.sum() == 80 and (conf.sum(1) == sizes).all() and conf.trace() == robust.sum()


def test_one_attack_has_no_worst_case_column_and_adaptive_matrix_agrees(trained, inputs):
    x, y = inputs
    chosen = {"apgd-ce": Adaptive("apgd-ce", EPS, steps=5)}
    result = evaluate_adaptive({"m": trained}, x, y, chosen)
    assert list(result.matrix.columns) == ["clean", "apgd-ce"]
    assert result.matrix.equals(adaptive_matrix({"m": trained}, x, y, chosen))


def test_adaptive_dgn_trains_the_generators_against_the_attacked_model(trained, digits):
    train = digits.train
    gens = dgn.train(trained, train.x, train.y, "nce", eps=0.3, epochs=1, progress=False)
    before = {k: v.clone() for k, v in gens.state_dict().items()}
    attack = AdaptiveDGN(gens, train.x, train.y, epochs=2, seed=1)
    x, y = digits.test.x[:50], digits.test.y[:50]
    ours = attack.craft(trained, x, y)
    further = dgn.train_further(gens, trained, train.x, train.y, epochs=2, seed=1)
    assert torch.equal(ours, further.generate(x, y))
    assert all(torch.equal(before[k], v) for k, v in gens.state_dict().items())  # init kept
    assert (ours - x).abs().max() <= 0.3 + 1e-6 and ours.min() >= 0 and ours.max() <= 1
    assert attack.describe()["epochs"] == 2 and attack.describe()["loss"] == "nce"


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 6),
    c=st.sampled_from([1, 3]),
    side=st.integers(3, 6),
    eps=st.floats(0.0, 0.5),
    name=st.sampled_from(ADAPTIVE),
)
def test_every_attack_stays_within_eps_and_in_the_box(n, c, side, eps, name):
    torch.manual_seed(n)
    model = TinyNet(c, side, side)
    x, y = torch.rand(n, c, side, side), torch.randint(0, 5, (n,))
    x_adv = Adaptive(name, eps, steps=3, n_queries=10).craft(model, x, y)
    assert x_adv.shape == x.shape and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() <= eps + 1e-6


def test_matrix_cells_give_counts_and_wilson_intervals_and_a_table():
    import pandas as pd

    matrix = pd.DataFrame({"clean": [0.9, 0.5], "pgd": [0.25, 0.0]}, index=["a", "b"])
    cells = matrix_cells(matrix, {"clean": 20, "pgd": 4})
    assert list(cells["correct"]) == [18, 1, 10, 0] and list(cells["n"]) == [20, 4, 20, 4]
    low, high = wilson(np.array([18, 1, 10, 0]), np.array([20, 4, 20, 4]))
    assert (cells["ci_low"] == low).all() and (cells["ci_high"] == high).all()
    table = interval_table(cells)
    assert list(table.columns) == ["model", "clean (n=20)", "pgd (n=4)"]
    assert table.iloc[1, 2] == "0.0 [0.0, 49.0]"  # 0 of 4: Wilson's upper end is 49 %
    with pytest.raises(DataError, match="misses"):
        matrix_cells(matrix, {"clean": 20})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "cw"}, "adaptive attacks must be among fgsm, pgd, apgd-ce"),
        ({"norm": "1"}, "norm must be inf or 2"),
        ({"eps": -0.1}, "eps must be a finite number of at least 0"),
        ({"eps": 1.5}, "eps must be at most 1"),
        ({"steps": 0}, "steps must be an integer of at least 1"),
        ({"restarts": 0}, "restarts must be an integer of at least 1"),
        ({"n_queries": 0}, "n_queries must be an integer of at least 1"),
        ({"seed": -1}, "seed must be an integer of at least 0"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Adaptive(**({"name": "pgd", "eps": 0.1} | kwargs))


def test_bad_evaluations_are_one_line_errors(trained, inputs):
    x, y = inputs
    pgd = {"pgd": Adaptive("pgd", EPS)}
    with pytest.raises(ConfigError, match="at least one row"):
        evaluate_adaptive({}, x, y, pgd)
    with pytest.raises(ConfigError, match="at least one column"):
        evaluate_adaptive({"m": trained}, x, y, {})
    with pytest.raises(ConfigError, match="must not be labelled 'worst case'"):
        evaluate_adaptive({"m": trained}, x, y, {WORST: Adaptive("pgd", EPS)})
    with pytest.raises(DataError, match="same number"):
        evaluate_adaptive({"m": trained}, x, y[:3], pgd)
