"""Seed 000's protocol repeated: over seeds (:func:`retrain_seeds`) and over metrics
(:func:`retrain_metrics`), keeping every point and each metric's best model.

Above :mod:`robust.retraining._protocol` (one seed) and :mod:`robust.retraining._parallel`
(the worker processes), so the dependency runs one way: ``_seeds`` → ``_parallel`` →
``_protocol``. :func:`retrain_metrics` is what the retrain stage runs: it owns the worker
processes, the progress bar and the per-point metric keys, while the caller passes in how a
phase is timed and how metrics are logged (no tracking import here).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from robust.data import Split
from robust.errors import ConfigError
from robust.retraining._budgets import _check_int, n_steps
from robust.retraining._parallel import Workers
from robust.retraining._protocol import SELECTION, EvalSets, Point, Pool, retrain
from robust.training import TrainConfig

LogMetrics = Callable[[Mapping[str, float], int | None], None]
"""Logs metrics at a step, called like ``StageRun.log_metrics(metrics, step)``."""
Phase = Callable[[str], AbstractContextManager[Any]]
"""Times a named phase, called like ``StageRun.phase(name)``."""


@dataclass(frozen=True, eq=False)
class Repeated:
    """One metric's retraining over several seeds.

    Attributes:
        points: every point, seed by seed in step order.
        best: the single best retrained point by validation accuracy
            (:data:`~robust.retraining.SELECTION`), or by combined test accuracy when the
            points have no selection score (ties: the first, i.e. the lowest seed, then the
            fewest inputs; row 0 is never chosen), and ``best_model`` its model (a CPU copy).
    """

    points: list[Point]
    best: Point
    best_model: nn.Module


def retrain_seeds(
    original: nn.Module,
    pool: Pool,
    orders: Mapping[int, np.ndarray | Tensor],
    config: str,
    steps: int,
    *,
    on_point: Callable[[Point, nn.Module], None] | None = None,
    workers: int | Workers | None = None,
    original_index: int = 0,
    **kwargs: Any,
) -> Repeated:
    """:func:`~robust.retraining.retrain` once per seed, keeping every point and the best model.

    Args:
        orders: seed → the order that seed retrains from (the same one for every seed, or a
            random order drawn per seed).
        on_point: called with each point and its model as soon as it and every point before
            it exist (logging, progress): seed by seed in step order, whatever ``workers``.
        workers: None or 1: fit in this process, one model after another; n > 1: in n worker
            processes on the CPU, started for this call; or
            :class:`~robust.retraining.Workers` made with the same ``original``, ``pool``,
            ``tests``, ``val``, ``train`` and ``device``, whose processes (once open) several
            calls share. The points and models do not depend on it, except for the float
            rounding of each process's torch thread count.
        original_index: stamped on every point (:attr:`Point.original`): which of a study's
            original models ``original`` is.
        kwargs: the keyword arguments of :func:`~robust.retraining.retrain` other than
            ``seed`` (``fit_fn`` only with one worker).

    Raises:
        ConfigError: as :func:`~robust.retraining.retrain`; ``workers`` below 1, more than one
            on CUDA or with ``fit_fn``, or :class:`~robust.retraining.Workers` made for other
            inputs. An error in a worker process is raised here as itself.
    """
    if not isinstance(workers, Workers):
        n = 1 if workers is None else _check_int("workers", workers, 1)
        if n == 1:
            results = (
                result
                for seed, order in orders.items()
                for result in retrain(original, pool, order, config, steps, seed=seed, **kwargs)
            )
            return _collect(results, on_point, original_index)
        shared = (kwargs.get(k) for k in ("tests", "val", "train"))
        workers = Workers(n, original, pool, *shared, kwargs.get("device", "auto"))  # not started
    results = workers._retrain(original, pool, orders, config, steps, **kwargs)
    return _collect(results, on_point, original_index)


def _collect(
    results: Iterator[tuple[Point, nn.Module]],
    on_point: Callable[[Point, nn.Module], None] | None,
    original_index: int = 0,
) -> Repeated:
    """Stamp each point with ``original_index``, hand each ``(point, model)`` to ``on_point``
    in order and keep the best trained one."""
    points: list[Point] = []
    best: tuple[Point, nn.Module] | None = None
    with contextlib.closing(results):  # on an error, the fits still to come are cancelled
        for point, model in results:
            point = dataclasses.replace(point, original=original_index)
            points.append(point)
            if on_point is not None:
                on_point(point, model)
            if point.step and (best is None or _better(point, best[0])):
                best = (point, copy.deepcopy(model).cpu())
    if best is None:
        raise ConfigError("orders must name at least one seed")
    return Repeated(points, *best)


def top_metric(results: Mapping[str, Repeated]) -> str:
    """The metric whose best model scored highest on the selection score (validation accuracy,
    else the combined test accuracy; a tie keeps the earlier metric): the retraining's model
    to keep when only one is."""
    top = next(iter(results))
    for metric, r in results.items():
        if _better(r.best, results[top].best):
            top = metric
    return top


def _better(point: Point, than: Point) -> bool:
    """Whether ``point`` beats ``than`` on the selection score (validation accuracy, else the
    combined test accuracy); a tie keeps ``than``."""
    key = SELECTION if SELECTION in point.scores else "accuracy_combined"
    return point.scores[key] > than.scores[key]


def merge_originals(parts: Sequence[Mapping[str, Repeated]]) -> dict[str, Repeated]:
    """One :class:`Repeated` per metric from the retrainings of several original models (one
    mapping each, in original order, each with the same metrics): every point, and the best
    model over all of them (ties: the earlier original)."""
    if not parts:
        raise ConfigError("parts must hold the retraining of at least one original")
    merged = {}
    for metric in parts[0]:
        repeats = [part[metric] for part in parts]
        best = repeats[0]
        for r in repeats[1:]:
            if _better(r.best, best.best):
                best = r
        points = [p for r in repeats for p in r.points]
        merged[metric] = Repeated(points, best.best, best.best_model)
    return merged


def point_metrics(metric: str, point: Point) -> dict[str, float]:
    """The metrics one curve point logs: ``<metric>/seed<s>/<quantity>`` for each of
    :data:`~robust.retraining.QUANTITIES` and, for a trained model (not row 0), ``…/fit_s``;
    logged at step ``point.n_inputs``."""
    keys = dict(point.scores) | ({"fit_s": point.fit_s} if point.step else {})
    return {f"{metric}/seed{point.seed}/{k}": v for k, v in keys.items()}


def retrain_metrics(
    original: nn.Module,
    pool: Pool,
    orders: Mapping[str, Mapping[int, np.ndarray | Tensor]],
    config: str,
    steps: int,
    *,
    train: TrainConfig,
    val: Split | None,
    tests: EvalSets,
    warm_start: bool = False,
    device: str | torch.device = "auto",
    workers: int = 1,
    engine: str = "local",
    address: str | None = None,
    phase: Phase | None = None,
    log_metrics: LogMetrics | None = None,
    progress: bool = False,
    original_index: int = 0,
) -> dict[str, Repeated]:
    """:func:`retrain_seeds` for each metric, sharing one set of worker processes.

    Args:
        orders: metric → seed → the order (:func:`~robust.retraining.seed_orders`).
        config, steps, train, val, tests, warm_start, device: as
            :func:`~robust.retraining.retrain`.
        workers: local worker processes (≥ 1; more than 1 on the CPU only), started once for
            every metric.
        engine, address: where the fits run: ``local`` processes or ``ray`` tasks (at
            ``address``; :class:`~robust.retraining.Workers`).
        phase: ``phase(name)`` is a context manager timing ``workers`` (starting the
            workers, unless the fits run in this process) and each metric's fits; e.g.
            ``StageRun.phase``.
        log_metrics: called as ``log_metrics(point_metrics(metric, point), point.n_inputs)``
            for every point, in order; e.g. ``StageRun.log_metrics``.
        progress: show a tqdm bar of the trained models on stderr (never when stderr is not a
            terminal).
        original_index: which of a study's originals ``original`` is (stamped on the points).

    Returns:
        metric → its :class:`Repeated`, in the order of ``orders``.

    Raises:
        ConfigError: as :func:`retrain_seeds` and :class:`~robust.retraining.Workers`.
    """
    phase = phase or (lambda name: contextlib.nullcontext())
    n_seeds = max((len(o) for o in orders.values()), default=0)
    bar = tqdm(
        total=len(orders) * n_seeds * n_steps(steps),
        unit="model",
        file=sys.stderr,
        disable=not progress or not sys.stderr.isatty(),
    )

    def on_point(metric: str, point: Point) -> None:
        if log_metrics is not None:
            log_metrics(point_metrics(metric, point), point.n_inputs)
        if point.step:
            bar.update()

    results: dict[str, Repeated] = {}
    with contextlib.ExitStack() as stack:
        stack.callback(bar.close)
        fitters = Workers(
            workers, original, pool, tests, val, train, device, engine=engine, address=address
        )
        if not fitters.in_process:
            with phase("workers"):  # start the workers once, for every metric
                stack.enter_context(fitters)
        for metric, seed_orders in orders.items():
            with phase(metric):  # the metric's fits run in parallel within it
                results[metric] = retrain_seeds(
                    original,
                    pool,
                    seed_orders,
                    config,
                    steps,
                    train=train,
                    val=val,
                    tests=tests,
                    warm_start=warm_start,
                    device=device,
                    workers=fitters,
                    on_point=lambda point, _, m=metric: on_point(m, point),
                    original_index=original_index,
                )
    return results
