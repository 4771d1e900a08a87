"""robust/guidance/pool.py: the clean-then-adversarial pool, its tensors and set coverage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robust.errors import ConfigError, DataError
from robust.guidance import POOL_KEYS, POOLS, assemble_pool, set_coverage, set_coverage_by_part
from robust.models.traces import Traces


def _traces(n: int, seed: int) -> Traces:
    gen = torch.Generator().manual_seed(seed)
    acts = [torch.rand(n, 6, generator=gen), torch.rand(n, 2, 3, 3, generator=gen)]
    return Traces(acts, torch.softmax(torch.rand(n, 4, generator=gen, dtype=torch.float64), 1))


@pytest.fixture
def clean() -> Traces:
    return _traces(5, 0)


@pytest.fixture
def adv() -> Traces:
    return _traces(3, 1)


Y_CLEAN, Y_ADV = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([3, 2, 1], dtype=torch.int32)


def test_train_and_adversarial_puts_the_clean_part_first(clean, adv):
    pool = assemble_pool(clean, adv, Y_CLEAN, Y_ADV)
    assert (len(pool), pool.n_clean, pool.n_adversarial) == (8, 5, 3)
    assert pool.sizes() == {"pool/n_clean": 5, "pool/n_adversarial": 3}
    assert torch.equal(pool.traces.flat, torch.cat([clean.flat, adv.flat]))
    assert torch.equal(pool.self_index, torch.tensor([0, 1, 2, 3, 4, -1, -1, -1]))
    t = pool.tensors()
    assert list(t) == list(POOL_KEYS)
    assert torch.equal(t["source"], torch.tensor([0, 0, 0, 0, 0, 1, 1, 1]))
    assert torch.equal(t["index"], torch.tensor([0, 1, 2, 3, 4, 0, 1, 2]))
    assert torch.equal(t["y"], torch.tensor([0, 1, 2, 3, 0, 3, 2, 1]))
    assert torch.equal(t["pred"], torch.cat([clean.pred, adv.pred]))
    assert all(v.dtype == torch.int64 and v.shape == (8,) for v in t.values())
    scores = np.arange(8.0)
    parts = pool.parts(scores)
    assert list(parts) == ["clean", "adversarial"]
    np.testing.assert_array_equal(np.concatenate(list(parts.values())), scores)
    assert len(parts["clean"]) == 5


def test_adversarial_pool_holds_only_the_adversarial_part(clean, adv):
    pool = assemble_pool(clean, adv, Y_CLEAN, Y_ADV, kind="adversarial")
    assert (len(pool), pool.n_clean, pool.clean) == (3, 0, None)
    assert torch.equal(pool.self_index, torch.full((3,), -1))
    t = pool.tensors()
    assert torch.equal(t["source"], torch.ones(3, dtype=torch.int64))
    assert torch.equal(t["index"], torch.arange(3))
    assert torch.equal(t["y"], Y_ADV.long()) and t["y"].dtype == torch.int64
    assert list(pool.parts(np.zeros(3))) == ["adversarial"]


def test_set_coverage_of_each_part(clean, adv):
    pool = assemble_pool(clean, adv, Y_CLEAN, Y_ADV)
    got = set_coverage_by_part(pool, 0.5)
    assert got == {
        "nc/set_coverage": set_coverage(pool.traces.acts, 0.5),
        "nc/set_coverage_clean": set_coverage(clean.acts, 0.5),
        "nc/set_coverage_adversarial": set_coverage(adv.acts, 0.5),
    }
    assert got["nc/set_coverage"] >= max(got["nc/set_coverage_clean"], 0)
    only = set_coverage_by_part(assemble_pool(clean, adv, Y_CLEAN, Y_ADV, kind="adversarial"))
    assert set(only) == {"nc/set_coverage", "nc/set_coverage_adversarial"}
    assert only["nc/set_coverage"] == only["nc/set_coverage_adversarial"]


def test_describe_is_json_with_lineage_first(clean, adv):
    pool = assemble_pool(clean, adv, Y_CLEAN, Y_ADV)
    lineage = {"attack_run": "a1", "model_run": "m1"}
    info = pool.describe(lineage, metrics=("nc", "dsa"), layer=("last_hidden",), seed=2)
    assert list(info)[:5] == ["attack_run", "model_run", "pool", "n_clean", "n_adversarial"]
    assert info["pool"] == "train_and_adversarial" and (info["n_clean"], info["seed"]) == (5, 2)
    assert info["metrics"] == ["nc", "dsa"] and info["layer"] == ["last_hidden"]
    assert info["pool_keys"] == POOL_KEYS and "highest score first" in info["order"]
    assert json.loads(json.dumps(info)) == info


def test_unknown_kind_is_one_line(clean, adv):
    with pytest.raises(ConfigError, match=r"^kind must be one of train_and_adversarial, ") as e:
        assemble_pool(clean, adv, Y_CLEAN, Y_ADV, kind="test")
    assert "but got kind='test'" in str(e.value) and "\n" not in str(e.value)
    assert POOLS == ("train_and_adversarial", "adversarial")


def test_labels_must_match_their_traces(clean, adv):
    with pytest.raises(DataError, match=r"^y_clean must hold one label per trace, 5, but got 4"):
        assemble_pool(clean, adv, Y_CLEAN[:4], Y_ADV)
    with pytest.raises(DataError, match=r"^y_adversarial must hold one label per trace, 3, "):
        assemble_pool(clean, adv, Y_CLEAN, Y_ADV[:2])


def test_scores_must_cover_the_pool(clean, adv):
    pool = assemble_pool(clean, adv, Y_CLEAN, Y_ADV)
    with pytest.raises(
        DataError, match=r"^scores must hold one score per pool input, 8, but got 7$"
    ):
        pool.parts(np.zeros(7))
