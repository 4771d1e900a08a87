"""One (metric, seed) retraining curve: start weights, training sets, points, warm start and
evaluation (robust/retraining/_protocol.py)."""

from __future__ import annotations

import copy
import itertools
import re

import numpy as np
import pytest
import torch
from torch import nn

from robust import models, retraining
from robust.data import Split
from robust.errors import ConfigError, DataError
from robust.training import TrainConfig

from .conftest import N_ADV, N_CLEAN

TRAIN = TrainConfig("adam", 1e-3, epochs=1, batch_size=16)
ORDER = np.random.default_rng(7).permutation(N_CLEAN + N_ADV)


def _run(original, pool, tests, recorder, config, steps=4, **kwargs):
    return list(
        retraining.retrain(
            original,
            pool,
            ORDER,
            config,
            steps,
            train=TRAIN,
            val=None,
            tests=tests,
            device="cpu",
            fit_fn=recorder,
            **kwargs,
        )
    )


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _rows(pool, x: torch.Tensor) -> list[int]:
    """Pool positions of the rows of x (each row of the pool is distinct)."""
    flat = pool.x.flatten(1)
    return [int((flat == row).all(1).nonzero()) for row in x.flatten(1)]


def test_c1_starts_every_step_from_fresh_seeded_weights(original, pool, tests, recorder):
    _run(original, pool, tests, recorder, "c1", seed=3)
    torch.manual_seed(3)
    fresh = models.build("digits_cnn", (1, 8, 8), 10).state_dict()
    assert len(recorder.calls) == 4
    for call in recorder.calls:
        assert _equal(call.initial, fresh)
        assert not _equal(call.initial, original.state_dict())
    other = retraining.initial_model(original, "c1", 4).state_dict()
    assert not _equal(other, fresh)  # another seed, other weights


@pytest.mark.parametrize("config", ["c2", "c3"])
def test_c2_and_c3_start_every_step_from_the_original_weights(
    original, pool, tests, recorder, config
):
    before = copy.deepcopy(original.state_dict())
    _run(original, pool, tests, recorder, config)
    for call in recorder.calls:
        assert _equal(call.initial, before)
        assert call.model is not original
    assert _equal(original.state_dict(), before)  # the original is never trained


def test_c3_sees_no_clean_input(original, pool, tests, recorder):
    points = [p for p, _ in _run(original, pool, tests, recorder, "c3")]
    adversarial = ORDER[pool.source.numpy()[ORDER] == 1]
    sizes = retraining.budgets(N_ADV, 4)
    for call, k in zip(recorder.calls, sizes, strict=True):
        rows = _rows(pool, call.x)
        assert (pool.source[rows] == 1).all()
        assert sorted(rows) == sorted(adversarial[:k].tolist())
    assert [p.n_inputs for p in points[1:]] == sizes.tolist()
    assert all(p.n_adversarial == p.n_inputs for p in points)


@pytest.mark.parametrize("config", ["c1", "c2"])
def test_budgets_nest_and_the_last_c1_c2_step_uses_the_whole_pool(
    original, pool, tests, recorder, config
):
    _run(original, pool, tests, recorder, config)
    sets = [_rows(pool, call.x) for call in recorder.calls]
    sizes = retraining.budgets(len(pool), 4).tolist()
    for rows, k in zip(sets, sizes, strict=True):
        assert rows == sorted(ORDER[:k].tolist())  # the top-k, fed in pool order
    for small, large in itertools.pairwise(sets):
        assert set(small) < set(large)
    assert sets[-1] == list(range(len(pool)))
    assert torch.equal(recorder.calls[-1].y, pool.y)


@pytest.mark.parametrize(("config", "first_step"), [("c1", 1), ("c2", 0), ("c3", 0)])
def test_one_point_per_step_and_row_0_only_for_c2_c3(
    original, pool, tests, recorder, config, first_step
):
    out = _run(original, pool, tests, recorder, config, steps=3, seed=5)
    points = [p for p, _ in out]
    assert [p.step for p in points] == list(range(first_step, 4))
    assert {p.seed for p in points} == {5}
    assert all(set(p.scores) == set(retraining.QUANTITIES) for p in points)
    if first_step == 0:
        assert out[0][1] is original and points[0].n_inputs == 0 and points[0].fit_s == 0
        assert points[0].scores == retraining.evaluate_model(original, tests, 10)
    assert len(recorder.calls) == 3
    assert all(c.kwargs["seed"] == 5 and c.kwargs["epochs"] == 1 for c in recorder.calls)


def test_warm_start_chains_the_steps_on_the_added_inputs(original, pool, tests, recorder):
    out = _run(original, pool, tests, recorder, "c2", warm_start=True)
    calls = recorder.calls
    assert _equal(calls[0].initial, original.state_dict())
    for before, after in itertools.pairwise(calls):
        assert after.model is before.model
        assert _equal(after.initial, before.final)
    sizes = [0, *retraining.budgets(len(pool), 4).tolist()]
    for call, lo, hi in zip(calls, sizes, sizes[1:], strict=False):
        assert _rows(pool, call.x) == sorted(ORDER[lo:hi].tolist())  # only what the step adds
    assert [p.n_inputs for p, _ in out[1:]] == sizes[1:]  # the inputs seen so far


def test_evaluate_model_against_hand_computed_values():
    class Always0(nn.Module):
        def forward(self, x):
            return torch.tensor([1.0, 0.0]).repeat(len(x), 1)

    x = torch.zeros(4, 1, 2, 2)
    sets = retraining.EvalSets(
        Split(x, torch.tensor([0, 0, 1, 1])), Split(x, torch.tensor([0, 1, 1, 1]))
    )
    scores = retraining.evaluate_model(Always0(), sets, num_classes=2)
    # combined: 3 of 8 right; class 0 precision 3/8, class 1 never predicted (0); recall 1, 0
    assert scores == pytest.approx(
        {
            "accuracy_clean": 0.5,
            "accuracy_adversarial": 0.25,
            "accuracy_combined": 3 / 8,
            "precision_macro": 3 / 16,
            "recall_macro": 0.5,
        }
    )


def test_evaluate_model_scores_the_selection_set_when_given():
    class Always0(nn.Module):
        def forward(self, x):
            return torch.tensor([1.0, 0.0]).repeat(len(x), 1)

    x = torch.zeros(4, 1, 2, 2)
    test = Split(x, torch.tensor([0, 0, 1, 1]))
    val = Split(torch.zeros(5, 1, 2, 2), torch.tensor([0, 1, 1, 1, 0]))
    with_val = retraining.evaluate_model(
        Always0(), retraining.EvalSets(test, test, val), num_classes=2
    )
    without = retraining.evaluate_model(Always0(), retraining.EvalSets(test, test), num_classes=2)
    assert with_val == {**without, retraining.SELECTION: pytest.approx(2 / 5)}
    assert retraining.SELECTION not in without


def test_eval_sets_put_the_adversarial_val_set_after_the_clean_one(digits):
    adv = {"x": torch.ones(3, 1, 8, 8), "y": torch.tensor([1, 2, 3], dtype=torch.int32)}
    sets = retraining.eval_sets(digits.test, adv, val=digits.val, val_adversarial=adv)
    n = len(digits.val)
    assert torch.equal(sets.val.x[:n], digits.val.x) and torch.equal(sets.val.x[n:], adv["x"])
    assert sets.val.y[n:].tolist() == [1, 2, 3] and sets.val.y.dtype == torch.int64
    assert retraining.eval_sets(digits.test, adv, val=digits.val).val is digits.val
    assert retraining.eval_sets(digits.test, adv).val is None
    with pytest.raises(ConfigError, match=r"^val_adversarial needs the clean val split"):
        retraining.eval_sets(digits.test, adv, val_adversarial=adv)


def test_the_best_model_is_chosen_on_validation_not_on_test(original, pool, tests, recorder):
    """The selection set is the test set upside down (labels shifted): the model best on it is
    not the one best on test, and the saved best must be the former."""
    shifted = Split(tests.clean.x, (tests.clean.y + 1) % 10)
    sets = retraining.EvalSets(tests.clean, tests.adversarial, shifted)
    result = retraining.retrain_seeds(
        original, pool, {0: ORDER, 1: ORDER[::-1].copy()}, "c2", 3, train=TRAIN, val=None,
        tests=sets, device="cpu", fit_fn=recorder,
    )  # fmt: skip
    trained = [p for p in result.points if p.step]
    best_val = max(p.scores[retraining.SELECTION] for p in trained)
    assert result.best == next(p for p in trained if p.scores[retraining.SELECTION] == best_val)


def test_real_training_repeats_for_a_seed_and_differs_between_seeds(original, pool, tests):
    def curve(seed):
        return [
            p.scores
            for p, _ in retraining.retrain(
                original,
                pool,
                ORDER,
                "c1",
                2,
                train=TRAIN,
                val=None,
                tests=tests,
                seed=seed,
                device="cpu",
            )
        ]

    first = curve(0)
    assert first == curve(0) and first != curve(1)
    assert all(0 <= v <= 1 for s in first for v in s.values())


def test_retrain_seeds_keeps_the_best_trained_model(original, pool, tests, recorder):
    seen = []
    result = retraining.retrain_seeds(
        original,
        pool,
        {0: ORDER, 1: ORDER[::-1].copy()},
        "c2",
        3,
        on_point=lambda p, m: seen.append((p, m)),
        train=TRAIN,
        val=None,
        tests=tests,
        device="cpu",
        fit_fn=recorder,
    )
    assert [p for p, _ in seen] == result.points and len(result.points) == 2 * 4
    trained = [p for p in result.points if p.step]
    best = max(p.scores["accuracy_combined"] for p in trained)
    assert result.best.step > 0 and result.best.scores["accuracy_combined"] == best
    assert result.best == next(p for p in trained if p.scores["accuracy_combined"] == best)
    model = next(m for p, m in seen if p is result.best)
    assert result.best_model is not model and _equal(
        result.best_model.state_dict(), model.state_dict()
    )


def test_pool_assemble_gathers_both_parts_and_checks_the_labels(digits):
    adv = Split(digits.test.x[:5], digits.test.y[:5])
    source, index = torch.tensor([0, 1, 0, 1]), torch.tensor([7, 4, 0, 2])
    y = torch.stack([digits.train.y[7], adv.y[4], digits.train.y[0], adv.y[2]])
    pool = retraining.Pool.assemble(source, index, digits.train, adv, y=y)
    assert torch.equal(
        pool.x, torch.stack([digits.train.x[7], adv.x[4], digits.train.x[0], adv.x[2]])
    )
    assert torch.equal(pool.y, y) and torch.equal(pool.source, source)
    with pytest.raises(DataError, match=r"^1 of the pool's labels differ from its inputs'"):
        retraining.Pool.assemble(
            source, index, digits.train, adv, y=torch.where(torch.arange(4) == 1, (y + 1) % 10, y)
        )
    with pytest.raises(DataError, match=r"adversarial indices must lie in \[0, 5\), but span"):
        retraining.Pool.assemble(source, torch.tensor([7, 5, 0, 2]), digits.train, adv)


def test_bad_arguments(original, pool, tests, recorder):
    with pytest.raises(ConfigError, match=r"^steps must be at most the pool size 40"):
        _run(original, pool, tests, recorder, "c3", steps=41)
    with pytest.raises(ConfigError, match=r"^seed must be an integer of at least 0"):
        _run(original, pool, tests, recorder, "c2", seed=-1)
    with pytest.raises(ConfigError, match=re.escape("config must be one of c1, c2, c3")):
        _run(original, pool, tests, recorder, "c0")
    only_clean = retraining.Pool(pool.x, pool.y, torch.zeros_like(pool.source))
    with pytest.raises(ConfigError, match=r"^config=c3 trains on the pool's adversarial part"):
        _run(original, only_clean, tests, recorder, "c3")
    with pytest.raises(ConfigError, match=r"^config=c1 rebuilds the original's architecture"):
        retraining.initial_model(nn.Linear(2, 2), "c1", 0)
    assert recorder.calls == []
