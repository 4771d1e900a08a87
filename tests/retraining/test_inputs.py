"""The retrain stage's inputs (robust/retraining/_inputs.py): default steps, the pool size a
configuration divides, each seed's order, and the pool and test sets from logged tensors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from robust import guidance, retraining
from robust.data import Split
from robust.errors import ConfigError, DataError


def test_default_steps_are_the_seeds_20_and_5_on_digits():
    assert retraining.default_steps("digits") == 5
    assert retraining.default_steps("mnist") == retraining.DEFAULT_STEPS == 20


@pytest.mark.parametrize(
    ("config", "expected"), [("c1", 7), ("c2", 7), ("c3", 3)], ids=["c1", "c2", "c3"]
)
def test_training_pool_size_is_the_adversarial_part_for_c3(config, expected):
    assert retraining.training_pool_size(config, 4, 3, metric_run="abc") == expected


def test_training_pool_size_refuses_c3_without_adversarial_inputs():
    assert retraining.training_pool_size("c2", 4, 0, metric_run="abc") == 4  # limit: allowed
    assert retraining.training_pool_size("c3", 0, 1, metric_run="abc") == 1
    message = "config=c3 retrains on adversarial inputs, but metric run abc's pool has none"
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        retraining.training_pool_size("c3", 4, 0, metric_run="abc")
    with pytest.raises(ConfigError, match=re.escape("config must be one of c1, c2, c3")):
        retraining.training_pool_size("c4", 4, 3, metric_run="abc")


def test_random_is_redrawn_per_seed_as_the_metric_stage_draws_it():
    n = 50
    logged = {"random": guidance.order(guidance.random_scores(n, 0), 0), "nc": np.arange(n)}
    zero = retraining.order_for("random", 0, logged, n, redraw_random=True)
    assert np.array_equal(np.asarray(zero), np.asarray(logged["random"]))
    one = retraining.order_for("random", 1, logged, n, redraw_random=True)
    assert not np.array_equal(np.asarray(one), np.asarray(logged["random"]))
    assert retraining.order_for("random", 1, logged, n, redraw_random=False) is logged["random"]
    assert retraining.order_for("nc", 1, logged, n, redraw_random=True) is logged["nc"]
    orders = retraining.seed_orders(["nc", "random"], range(2, 4), logged, n, redraw_random=True)
    assert list(orders) == ["nc", "random"] and list(orders["nc"]) == [2, 3]
    assert orders["nc"][3] is logged["nc"]
    expected = retraining.order_for("random", 3, logged, n, redraw_random=True)
    assert np.array_equal(np.asarray(orders["random"][3]), np.asarray(expected))


def test_pool_from_gathers_the_described_pool_and_eval_sets_cast_labels(digits):
    adv = {"x": digits.test.x[:5], "y": digits.test.y[:5].int()}  # as logged: any int dtype
    source, index = torch.tensor([0, 1, 0, 1]), torch.tensor([7, 4, 0, 2])
    y = torch.stack([digits.train.y[7], adv["y"][4].long(), digits.train.y[0], adv["y"][2].long()])
    pool = retraining.pool_from({"source": source, "index": index, "y": y}, digits.train, adv)
    expected = retraining.Pool.assemble(
        source, index, digits.train, Split(adv["x"], adv["y"].long()), y=y
    )
    assert torch.equal(pool.x, expected.x) and torch.equal(pool.y, expected.y)
    with pytest.raises(DataError, match=r"^1 of the pool's labels differ from its inputs'"):
        retraining.pool_from(
            {"source": source, "index": index, "y": torch.where(index == 4, (y + 1) % 10, y)},
            digits.train,
            adv,
        )
    sets = retraining.eval_sets(digits.test, adv)
    assert sets.adversarial.y.dtype == torch.int64 and len(sets.combined) == len(digits.test) + 5
