"""The protocol over seeds and metrics (robust/retraining/_seeds.py): per-point metric keys,
and retrain_metrics = retrain_seeds per metric, inside the caller's phases, logging each point."""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
import torch

from robust import retraining
from robust.errors import ConfigError
from robust.retraining import Point
from robust.training import TrainConfig

from .conftest import N_ADV, N_CLEAN

TRAIN = TrainConfig("adam", 1e-3, epochs=1, batch_size=32)


def test_point_metrics_have_fit_s_only_for_trained_models():
    scores = dict.fromkeys(retraining.QUANTITIES, 0.5)
    row_0 = retraining.point_metrics("nc", Point(3, 0, 0, 0, 0.0, scores))
    assert row_0 == {f"nc/seed3/{q}": 0.5 for q in retraining.QUANTITIES}
    trained = retraining.point_metrics("nc", Point(3, 1, 10, 4, 1.5, scores))
    assert trained == row_0 | {"nc/seed3/fit_s": 1.5}


def test_retrain_metrics_is_retrain_seeds_per_metric_in_its_phases(original, pool, tests):
    n = N_CLEAN + N_ADV
    orders = {
        "nc": {s: np.random.default_rng(s).permutation(n) for s in (0, 1)},
        "random": {s: np.random.default_rng(10 + s).permutation(n) for s in (0, 1)},
    }
    kwargs = {"train": TRAIN, "val": None, "tests": tests, "device": "cpu"}
    phases, logged = [], []

    @contextlib.contextmanager
    def phase(name):
        phases.append(name)
        yield

    results = retraining.retrain_metrics(
        original,
        pool,
        orders,
        "c2",
        2,
        **kwargs,
        phase=phase,
        log_metrics=lambda metrics, step: logged.append((metrics, step)),
    )
    assert phases == ["nc", "random"]  # no "workers" phase with one process
    assert list(results) == ["nc", "random"]
    expected = []
    for m, seed_orders in orders.items():
        alone = retraining.retrain_seeds(original, pool, seed_orders, "c2", 2, **kwargs)
        assert _untimed(results[m].points) == _untimed(alone.points)
        assert _untimed([results[m].best]) == _untimed([alone.best])
        assert _equal(results[m].best_model, alone.best_model)
        expected += [(retraining.point_metrics(m, p), p.n_inputs) for p in alone.points]
    assert [(set(metrics), step) for metrics, step in logged] == [
        (set(metrics), step) for metrics, step in expected
    ]
    for (got, _), (want, _) in zip(logged, expected, strict=True):
        assert {k: v for k, v in got.items() if not k.endswith("fit_s")} == {
            k: v for k, v in want.items() if not k.endswith("fit_s")
        }


def _untimed(points):
    return [dataclasses.replace(p, fit_s=0.0) for p in points]


def _equal(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_retrain_metrics_checks_workers_before_any_work(original, pool, tests):
    orders = {"nc": {0: np.arange(N_CLEAN + N_ADV)}}
    with pytest.raises(
        ConfigError, match=r"^workers must be an integer of at least 1, but got workers=0$"
    ):
        retraining.retrain_metrics(
            original, pool, orders, "c2", 2, train=TRAIN, val=None, tests=tests, workers=0
        )


def test_merge_originals_keeps_every_point_and_the_best_over_all_originals():
    def repeated(original: int, val: list[float]) -> retraining.Repeated:
        points = [
            Point(s, 1, 10, 0, 1.0, {"accuracy_combined": 0.5, retraining.SELECTION: v}, original)
            for s, v in enumerate(val)
        ]
        best = max(points, key=lambda p: p.scores[retraining.SELECTION])
        return retraining.Repeated(points, best, torch.nn.Linear(1, 1))

    parts = [{"nc": repeated(0, [0.6, 0.7])}, {"nc": repeated(1, [0.8, 0.5])}]
    merged = retraining.merge_originals(parts)["nc"]
    assert merged.points == parts[0]["nc"].points + parts[1]["nc"].points
    assert merged.best is parts[1]["nc"].best and merged.best_model is parts[1]["nc"].best_model
    tie = [{"nc": repeated(0, [0.8])}, {"nc": repeated(1, [0.8])}]
    assert retraining.merge_originals(tie)["nc"].best.original == 0  # the earlier original
    with pytest.raises(ConfigError, match="at least one original"):
        retraining.merge_originals([])


def test_retrain_seeds_stamps_the_original_on_every_point(original, pool, tests, recorder):
    order = np.arange(len(pool))
    result = retraining.retrain_seeds(
        original, pool, {0: order}, "c2", 2, train=TRAIN, val=None, tests=tests, device="cpu",
        fit_fn=recorder, original_index=2,
    )  # fmt: skip
    assert {p.original for p in result.points} == {2} and result.best.original == 2
