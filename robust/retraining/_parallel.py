"""Retraining fits in parallel: :class:`Workers`, :func:`auto_workers` and
:func:`resolve_workers`, on an executor of :mod:`robust.engine` (local processes or Ray).

A small model's fit is bound by per-step Python and dispatcher overhead (digits: ~3–4 ms per
optimizer step), so a second thread in one process gains little, while two single-threaded
processes do about twice the work on two cores (the digits retrain stage's fits took 140 s
instead of 260 s). :class:`Workers` keeps such workers for a whole stage:

* ``engine="local"``: ``n`` spawned processes, each with cores // n torch threads;
  ``engine="ray"``: Ray tasks of one CPU each (on CUDA a quarter of a GPU each), as many at
  once as the cluster has room for, retried when a worker dies;
* the state every fit shares (the original model, the pool, the test sets, the validation split
  and the training configuration) reaches each worker once (:mod:`robust.engine`), not with
  every task;
* a task is one (seed, step) fit (the best load balance), or with ``warm_start`` one seed's
  whole chain (its steps depend on each other); it returns each point and the trained
  weights, and the parent hands them on seed by seed in step order, as one process would.

Every fit is seeded (``initial_model(seed)``, ``fit(seed=...)``), so which worker runs it does
not matter; only the thread count can change float rounding.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from robust import engine as engines
from robust.data import Split
from robust.errors import ConfigError
from robust.retraining._budgets import _check_int
from robust.retraining._protocol import (
    EvalSets,
    Point,
    Pool,
    _fits,
    _plan,
    evaluate_model,
    initial_model,
    retrain,
)
from robust.training import TrainConfig, build_optimizer, fit
from robust.utils import resolve_device

MAX_AUTO_WORKERS = 4
"""The most workers :func:`auto_workers` picks (each holds its own copy of the pool and test
sets)."""
GPU_SHARE = 0.25
"""The fraction of a GPU one Ray fit declares on CUDA (small models: four share a GPU)."""


def cores() -> int:
    """CPU cores this process may run on (:func:`robust.engine.cores`)."""
    return engines.cores()


def auto_workers(device: str | torch.device = "auto") -> int:
    """The number of worker processes ``workers=auto`` means.

    On CUDA 1 (the GPU is the bottleneck, and the workers fit on the CPU only); on the CPU one
    per core, at most :data:`MAX_AUTO_WORKERS`, so 1 on a single core.

    Example:
        >>> auto_workers("cpu")  # on a 2-core machine
        2
    """
    if resolve_device(device).type == "cuda":
        return 1
    return max(1, min(cores(), MAX_AUTO_WORKERS))


def resolve_workers(workers: int | None, device: str | torch.device = "auto") -> int:
    """``workers``, or :func:`auto_workers` when None, checked against the device before any
    work (a resolved count is a stable reuse key).

    Raises:
        ConfigError: ``workers`` below 1, or more than 1 with a CUDA device (workers fit on
            the CPU).
    """
    n = auto_workers(device) if workers is None else _check_int("workers", workers, 1)
    device = resolve_device(device)
    if n > 1 and device.type == "cuda":
        raise ConfigError(
            f"workers fit on the CPU, so more than 1 needs device=cpu, but got workers={n} "
            "with device=cuda"
        )
    return n


class _Shared(NamedTuple):
    """What every fit of a stage shares; a worker receives it once, when it starts."""

    original: nn.Module
    pool: Pool
    tests: EvalSets
    val: Split | None
    train: TrainConfig


class Workers:
    """Workers that fit guided-retraining models, shared between calls.

    A context manager: entering starts them (local processes are spawned, a few seconds each,
    so open it once per stage and pass it to every :func:`~robust.retraining.retrain_seeds`
    call as ``workers=``), leaving stops them. Locally with ``n=1`` it starts nothing and the
    fits run in this process.

    Args:
        n: local worker processes, ≥ 1 (:func:`auto_workers` gives the default rule); with Ray
            not used (the cluster decides how many fits run at once).
        original, pool, tests, val, train, device: what every fit shares, exactly as each
            :func:`~robust.retraining.retrain_seeds` call then passes them (the same objects).
        threads: torch threads per local worker; default ``cores() // n``, at least 1 (a Ray
            fit runs with one).
        engine: ``local`` (default) or ``ray`` (:mod:`robust.engine`).
        address: with Ray, the cluster to connect to when this process is not connected yet
            (None: a local Ray instance).

    Raises:
        ConfigError: ``n`` or ``threads`` below 1, inputs of the wrong type, n > 1 locally on
            CUDA, or an unknown engine.

    Example:
        >>> with Workers(2, original, pool, tests, ds.val, train, "cpu") as workers:
        ...     for m in metrics:
        ...         results[m] = retrain_seeds(original, pool, orders[m], "c2", 5,
        ...                                    workers=workers, train=train, val=ds.val,
        ...                                    tests=tests, device="cpu")
    """

    def __init__(
        self,
        n: int,
        original: nn.Module,
        pool: Pool,
        tests: EvalSets,
        val: Split | None,
        train: TrainConfig,
        device: str | torch.device = "auto",
        *,
        threads: int | None = None,
        engine: str = "local",
        address: str | None = None,
    ) -> None:
        n = _check_int("workers", n, 1)
        self.engine = engines.check_engine(engine)
        for name, value, kind, what in (
            ("original", original, nn.Module, "a torch module"),
            ("pool", pool, Pool, "a Pool"),
            ("tests", tests, EvalSets, "EvalSets"),
            ("val", val, Split | None, "a Split or None"),
            ("train", train, TrainConfig, "a TrainConfig"),
        ):
            if not isinstance(value, kind):
                raise ConfigError(f"{name} must be {what}, but got {type(value).__name__}")
        device = resolve_device(device)
        if n > 1 and device.type != "cpu" and engine == "local":
            raise ConfigError(
                f"workers fit on the CPU, so more than 1 needs device=cpu, but got workers={n} "
                f"with device={device.type}"
            )
        self.n = n
        self.threads = (
            max(1, cores() // n) if threads is None else _check_int("threads", threads, 1)
        )
        self.device = device
        self.address = address
        self._shared = _Shared(original, pool, tests, val, train)
        self._executor: engines.Executor | None = None

    @property
    def in_process(self) -> bool:
        """Whether the fits run in this process (local, one worker)."""
        return self.engine == "local" and self.n == 1

    def __enter__(self) -> Workers:
        if self.in_process:
            return self
        if self._executor is not None:
            raise RuntimeError("these Workers are already open")
        on_gpu = self.device.type == "cuda"
        shared = self._shared._replace(
            original=copy.deepcopy(self._shared.original).cpu()  # a fit moves it to its device
        )
        self._executor = engines.open_executor(
            self.engine,
            shared,
            workers=self.n,
            resources=engines.Resources(
                num_cpus=self.threads if self.engine == "local" else 1,
                num_gpus=GPU_SHARE if on_gpu else 0.0,
            ),
            address=self.address,
            warm_up=_warm_up,
        )
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(now=kind is not None and issubclass(kind, KeyboardInterrupt))

    def close(self, *, now: bool = False) -> None:
        """Cancel the fits not yet started, wait for the running ones (``now``: kill them, as
        on Ctrl-C or SIGTERM) and stop the workers."""
        if self._executor is None:
            return
        self._executor.close(now=now)
        self._executor = None

    def _check_same(self, **given: Any) -> None:
        """Raise a ConfigError unless a call passes what these workers were made with."""
        shared = self._shared._asdict()
        for name, value in given.items():
            if name == "device":
                same = resolve_device(value) == self.device
            elif name == "train":
                same = value == shared[name]
            else:
                same = value is shared[name]
            if not same:
                raise ConfigError(
                    f"workers were made for another {name} than this call's; make Workers with "
                    "the original, pool, tests, val, train and device of every call"
                )

    def _retrain(
        self,
        original: nn.Module,
        pool: Pool,
        orders: Mapping[int, np.ndarray | Tensor],
        config: str,
        steps: int,
        *,
        train: TrainConfig,
        val: Split | None,
        tests: EvalSets,
        warm_start: bool = False,
        device: str | torch.device = "auto",
        fit_fn: Any = None,
    ) -> Iterator[tuple[Point, nn.Module]]:
        """What :func:`~robust.retraining.retrain_seeds` runs: :func:`retrain` for each seed,
        yielding in the same order; unless in this process every fit runs in a worker (the
        workers are started for this call unless they are open already)."""
        self._check_same(
            original=original, pool=pool, tests=tests, val=val, train=train, device=device
        )
        if self.in_process:
            for seed, order in orders.items():
                yield from retrain(
                    original,
                    pool,
                    order,
                    config,
                    steps,
                    train=train,
                    val=val,
                    tests=tests,
                    seed=seed,
                    warm_start=warm_start,
                    device=device,
                    fit_fn=fit if fit_fn is None else fit_fn,
                )
            return
        if fit_fn is not None:
            raise ConfigError(
                f"fit_fn replaces fit in this process only, so it needs workers=1 and "
                f"engine=local, but got workers={self.n}, engine={self.engine}"
            )

        # Check every seed before any work.
        plans = {}  # seed → (positions, the steps of each of its tasks, number of classes)
        for seed, order in orders.items():
            positions, sizes, seed, num_classes = _plan(
                original, pool, order, config, steps, seed, tests
            )
            budget = list(enumerate(sizes.tolist(), start=1))
            chunks = [budget] if warm_start else [[b] for b in budget]
            plans[seed] = (positions, chunks, num_classes)
        if not plans:
            raise ConfigError("orders must name at least one seed")

        with contextlib.ExitStack() as stack:
            if self._executor is None:  # not opened by the caller: for this call only
                stack.enter_context(self)
            yield from self._run(original, tests, config, warm_start, plans)

    def _run(
        self,
        original: nn.Module,
        tests: EvalSets,
        config: str,
        warm_start: bool,
        plans: dict[int, tuple[np.ndarray, list[list[tuple[int, int]]], int]],
    ) -> Iterator[tuple[Point, nn.Module]]:
        """Submit every task, the largest fits first (the last to finish are then short), and
        yield the results seed by seed in step order, waiting for each in turn."""
        tasks = [(seed, chunk) for seed, (_, chunks, _) in plans.items() for chunk in chunks]
        futures: dict[tuple[int, int], engines.Task] = {}  # (seed, first step) → its results
        for seed, chunk in sorted(tasks, key=lambda task: -task[1][-1][1]):
            positions, _, num_classes = plans[seed]
            futures[seed, chunk[0][0]] = self._executor.submit(
                _fit_task,
                config,
                seed,
                positions[: chunk[-1][1]],
                chunk,
                warm_start,
                num_classes,
                self.device.type,
            )
        row_0 = None
        try:
            for seed, (_, chunks, num_classes) in plans.items():
                if config != "c1":
                    if row_0 is None:  # the same for every seed
                        row_0 = evaluate_model(original, tests, num_classes)
                    yield Point(seed, 0, 0, 0, 0.0, dict(row_0)), original
                for chunk in chunks:
                    for point, state in futures[seed, chunk[0][0]].result():
                        model = initial_model(original, config, seed)
                        model.load_state_dict(pickle.loads(state))
                        yield point, model.to(self.device)
        finally:
            for future in futures.values():
                future.cancel()  # after an error: the fits not yet started


# ---- in the workers ----------------------------------------------------------------------
def _warm_up(shared: _Shared) -> None:
    """The first optimizer a process makes imports torch._dynamo (1–2 s): pay it once per
    worker, not in its first fit."""
    build_optimizer(shared.train.optimizer, [torch.zeros(1, requires_grad=True)], 1e-3)


def _fit_task(
    s: _Shared,
    config: str,
    seed: int,
    positions: np.ndarray,
    steps: list[tuple[int, int]],
    warm_start: bool,
    num_classes: int,
    device: str,
) -> list[tuple[Point, bytes]]:
    """Fit and score the models of ``steps``; return each point and its pickled state_dict
    (plain bytes: tensors sent through the result queue would go through shared memory)."""
    positions = np.array(positions)  # writable (Ray hands arrays over read-only)
    return [
        (point, pickle.dumps(model.state_dict(), protocol=pickle.HIGHEST_PROTOCOL))
        for point, model in _fits(
            s.original,
            s.pool,
            positions,
            steps,
            config=config,
            seed=seed,
            warm_start=warm_start,
            train=s.train,
            val=s.val,
            tests=s.tests,
            num_classes=num_classes,
            device=device,
        )
    ]
