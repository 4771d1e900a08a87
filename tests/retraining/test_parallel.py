"""Fits in worker processes (robust/retraining/_parallel.py): the same points, models and order
as in one process; errors raised in a worker reach the caller; the auto rule."""

from __future__ import annotations

import copy
import dataclasses
import re

import numpy as np
import pytest
import torch

from robust import models, retraining
from robust.data import Split
from robust.errors import ConfigError, DataError
from robust.training import TrainConfig

from .conftest import N_ADV, N_CLEAN

TRAIN = TrainConfig("adam", 1e-3, epochs=2, batch_size=16)
ORDERS = {s: np.random.default_rng(s).permutation(N_CLEAN + N_ADV) for s in (3, 4)}


@pytest.fixture(scope="module")
def model() -> models.ZooModel:
    torch.manual_seed(123)
    return models.build("digits_cnn", (1, 8, 8), 10).eval()


@pytest.fixture(scope="module")
def val(digits) -> Split:
    return Split(digits.val.x[:40], digits.val.y[:40])


@pytest.fixture(scope="module")
def workers(model, pool, tests, val):
    """Two single-threaded workers, started once and shared by every call of this module."""
    with retraining.Workers(2, model, pool, tests, val, TRAIN, "cpu", threads=1) as w:
        yield w


@pytest.fixture
def one_thread():
    """This process on one thread, as each worker: float results then match exactly (a
    convolution's reductions may be split differently with another thread count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _retrain(model, pool, tests, val, config, warm_start, workers):
    seen = []
    result = retraining.retrain_seeds(
        model,
        pool,
        ORDERS,
        config,
        3,
        on_point=lambda p, m: seen.append((p, copy.deepcopy(m.state_dict()))),
        workers=workers,
        train=TRAIN,
        val=val,
        tests=tests,
        warm_start=warm_start,
        device="cpu",
    )
    return result, seen


def _key(point: retraining.Point) -> tuple:
    """A point without its wall time."""
    return (point.seed, point.step, point.n_inputs, point.n_adversarial, dict(point.scores))


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("config", "warm_start"),
    [
        pytest.param("c2", False, id="c2"),
        pytest.param("c1", True, id="c1-warm-start"),
        pytest.param("c3", True, id="c3-warm-start"),
    ],
)
def test_two_workers_give_what_one_process_gives_in_the_same_order(
    model, pool, tests, val, workers, one_thread, config, warm_start
):
    one, seen_one = _retrain(model, pool, tests, val, config, warm_start, workers=1)
    two, seen_two = _retrain(model, pool, tests, val, config, warm_start, workers=workers)
    assert [_key(p) for p in two.points] == [_key(p) for p in one.points]
    assert [(p.seed, p.step) for p, _ in seen_two] == [(p.seed, p.step) for p, _ in seen_one]
    assert [p.step for p in one.points] == (
        [1, 2, 3] * 2 if config == "c1" else [0, 1, 2, 3] * 2
    )  # seed by seed, row 0 first for c2/c3
    for (_, a), (_, b) in zip(seen_one, seen_two, strict=True):
        assert _equal(a, b)
    assert _key(two.best) == _key(one.best)
    assert _equal(two.best_model.state_dict(), one.best_model.state_dict())
    assert all(p.fit_s > 0 for p in two.points if p.step)


def test_an_error_in_a_worker_is_raised_as_itself(model, pool, tests, val):
    bad = copy.deepcopy(model)
    bad.spec = {**bad.spec, "num_classes": 5}  # fit refuses labels ≥ 5, in the worker
    message = re.escape("train.y must hold labels in [0, 5)")
    with pytest.raises(DataError, match=message) as in_process:
        _retrain(bad, pool, tests, val, "c2", False, workers=1)
    with pytest.raises(DataError, match=message) as in_worker:  # workers started for the call
        _retrain(bad, pool, tests, val, "c2", False, workers=2)
    assert str(in_worker.value) == str(in_process.value)


def test_an_error_in_on_point_stops_the_fits(model, pool, tests, val, workers):
    def fail(point, _):
        if point.step == 1:
            raise RuntimeError("logging failed")

    kwargs = {"train": TRAIN, "val": val, "tests": tests, "device": "cpu"}
    with pytest.raises(RuntimeError, match=r"^logging failed$"):
        retraining.retrain_seeds(
            model, pool, ORDERS, "c2", 3, on_point=fail, workers=workers, **kwargs
        )
    again = retraining.retrain_seeds(model, pool, ORDERS, "c2", 1, workers=workers, **kwargs)
    assert [p.step for p in again.points] == [0, 1, 0, 1]  # the workers still serve


def test_bad_workers_fail_before_any_work(model, pool, tests, val, recorder):
    kwargs = {"train": TRAIN, "val": val, "tests": tests, "device": "cpu"}
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match=r"^workers must be an integer of at least 1") as e:
            retraining.retrain_seeds(model, pool, ORDERS, "c2", 3, workers=bad, **kwargs)
        assert str(e.value) == f"workers must be an integer of at least 1, but got workers={bad!r}"
    with pytest.raises(ConfigError, match=r"^fit_fn replaces fit in this process only, so it "):
        retraining.retrain_seeds(
            model, pool, ORDERS, "c2", 3, workers=2, fit_fn=recorder, **kwargs
        )
    with pytest.raises(ConfigError, match=r"^steps must be at most the pool size 100"):
        retraining.retrain_seeds(model, pool, ORDERS, "c2", 101, workers=2, **kwargs)
    with pytest.raises(ConfigError, match=r"^workers fit on the CPU, so more than 1 needs "):
        retraining.Workers(2, model, pool, tests, val, TRAIN, torch.device("cuda"))
    with pytest.raises(ConfigError, match=r"^tests must be EvalSets, but got NoneType$"):
        retraining.retrain_seeds(model, pool, ORDERS, "c2", 3, workers=2, train=TRAIN, val=val)
    with pytest.raises(ConfigError, match=r"^threads must be an integer of at least 1"):
        retraining.Workers(2, model, pool, tests, val, TRAIN, "cpu", threads=0)
    assert recorder.calls == []


def test_workers_must_be_made_for_the_calls_inputs(model, pool, tests, val):
    one = retraining.Workers(1, model, pool, tests, val, TRAIN, "cpu")  # starts nothing
    kwargs = {"train": TRAIN, "val": val, "tests": tests, "device": "cpu"}
    other = copy.deepcopy(model)
    with pytest.raises(ConfigError, match=r"^workers were made for another original than"):
        retraining.retrain_seeds(other, pool, ORDERS, "c2", 1, workers=one, **kwargs)
    with pytest.raises(ConfigError, match=r"^workers were made for another train than"):
        retraining.retrain_seeds(
            model,
            pool,
            ORDERS,
            "c2",
            1,
            workers=one,
            **kwargs | {"train": dataclasses.replace(TRAIN, lr=1e-2)},
        )


def test_one_worker_runs_in_this_process_and_keeps_fit_fn(model, pool, tests, val, recorder):
    one = retraining.Workers(1, model, pool, tests, val, TRAIN, "cpu")
    result = retraining.retrain_seeds(
        model,
        pool,
        ORDERS,
        "c2",
        2,
        workers=one,
        train=TRAIN,
        val=val,
        tests=tests,
        device="cpu",
        fit_fn=recorder,
    )
    assert len(recorder.calls) == 2 * 2 and len(result.points) == 2 * 3


@pytest.mark.parametrize(
    ("device", "cores", "expected"),
    [("cpu", 1, 1), ("cpu", 2, 2), ("cpu", 3, 3), ("cpu", 16, 4), ("cuda", 16, 1)],
)
def test_auto_workers_is_one_per_core_up_to_4_and_1_on_cuda(monkeypatch, device, cores, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda _: set(range(cores)), raising=False)
    assert retraining.auto_workers(torch.device(device)) == expected
    assert retraining.MAX_AUTO_WORKERS == 4


def test_resolve_workers_is_auto_when_none_and_cpu_only_above_1(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda _: set(range(3)), raising=False)
    assert retraining.resolve_workers(None, "cpu") == 3
    assert retraining.resolve_workers(1, torch.device("cuda")) == 1  # limit: 1 is allowed
    assert retraining.resolve_workers(None, torch.device("cuda")) == 1
    message = (
        "workers fit on the CPU, so more than 1 needs device=cpu, but got workers=2 with "
        "device=cuda"
    )
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        retraining.resolve_workers(2, torch.device("cuda"))
    with pytest.raises(ConfigError, match=r"^workers must be an integer of at least 1"):
        retraining.resolve_workers(0, "cpu")
