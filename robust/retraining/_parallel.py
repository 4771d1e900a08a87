"""Retraining fits in worker processes on the CPU: :class:`Workers`, :func:`auto_workers` and
:func:`resolve_workers`.

A small model's fit is bound by per-step Python and dispatcher overhead (digits: ~3–4 ms per
optimizer step), so a second thread in one process gains little, while two single-threaded
processes do about twice the work on two cores (the digits retrain stage's fits took 140 s
instead of 260 s). :class:`Workers` keeps such processes for a whole stage:

* they are **spawned** (forking a process whose torch thread pools already run is unsafe), and
  each sets its torch thread count once (cores // workers, at least 1);
* the state every fit shares (the original model, the pool, the test sets, the validation split
  and the training configuration) is pickled once to a temporary file that each worker loads
  when it starts, not sent with every task;
* a task is one (seed, step) fit (the best load balance), or with ``warm_start`` one seed's
  whole chain (its steps depend on each other); it returns each point and the trained
  weights, and the parent hands them on seed by seed in step order, as one process would.

Every fit is seeded (``initial_model(seed)``, ``fit(seed=...)``), so which worker runs it does
not matter; only the thread count can change float rounding.
"""

from __future__ import annotations

import contextlib
import copy
import multiprocessing
import os
import pickle
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

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
_START_TIMEOUT_S = 600.0


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, as ``taskset`` or a container
    limits it; every core where the platform has no affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
    """Worker processes that fit guided-retraining models on the CPU, shared between calls.

    A context manager: entering starts the processes (spawned; a few seconds each, so open it
    once per stage and pass it to every :func:`~robust.retraining.retrain_seeds` call as
    ``workers=``), leaving stops them. With ``n=1`` it starts nothing and the fits run in this
    process.

    Args:
        n: worker processes, ≥ 1 (:func:`auto_workers` gives the default rule).
        original, pool, tests, val, train, device: what every fit shares, exactly as each
            :func:`~robust.retraining.retrain_seeds` call then passes them (the same objects).
        threads: torch threads per worker; default ``cores() // n``, at least 1.

    Raises:
        ConfigError: ``n`` or ``threads`` below 1, inputs of the wrong type, or n > 1 on CUDA.

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
    ) -> None:
        n = _check_int("workers", n, 1)
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
        if n > 1 and device.type != "cpu":
            raise ConfigError(
                f"workers fit on the CPU, so more than 1 needs device=cpu, but got workers={n} "
                f"with device={device.type}"
            )
        self.n = n
        self.threads = (
            max(1, cores() // n) if threads is None else _check_int("threads", threads, 1)
        )
        self.device = device
        self._shared = _Shared(original, pool, tests, val, train)
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        if self.n == 1:
            return self
        if self._executor is not None:
            raise RuntimeError("these Workers are already open")
        # The shared state goes through a file: a spawned child reads its start-up data from a
        # pipe that the parent keeps open until it has written everything, so a child that
        # died on start-up with megabytes unread would block the parent forever.
        with tempfile.NamedTemporaryFile("wb", suffix=".pkl", delete=False) as f:
            state_file = Path(f.name)
            shared = self._shared._replace(original=copy.deepcopy(self._shared.original).cpu())
            pickle.dump(shared, f, protocol=pickle.HIGHEST_PROTOCOL)
        context = multiprocessing.get_context("spawn")
        self._executor = ProcessPoolExecutor(
            self.n,
            mp_context=context,
            initializer=_start_worker,
            initargs=(str(state_file), self.threads, context.Barrier(self.n)),
        )
        try:
            # Start every worker now (spawning imports torch: seconds), not inside the first
            # fits: each of n tasks waits at the barrier until n workers hold one.
            for future in [self._executor.submit(_wait_for_all) for _ in range(self.n)]:
                future.result()
        except BaseException:
            self.close()
            raise
        finally:
            state_file.unlink(missing_ok=True)  # every worker has read it (or is gone)
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(now=kind is not None and issubclass(kind, KeyboardInterrupt))

    def close(self, *, now: bool = False) -> None:
        """Cancel the fits not yet started, wait for the running ones (``now``: kill them, as
        on Ctrl-C or SIGTERM) and stop the workers.

        Workers ignore SIGINT and SIGTERM (a signal to the process group reaches them too):
        the parent alone decides, so an interrupted stage stops them here, once, without a
        traceback per worker."""
        if self._executor is None:
            return
        if now:  # ProcessPoolExecutor has no public way to stop running tasks before 3.14
            for process in list((self._executor._processes or {}).values()):
                process.kill()
        self._executor.shutdown(wait=True, cancel_futures=True)
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
        yielding in the same order; with n > 1 every fit runs in a worker (the processes are
        started for this call unless these workers are open already)."""
        self._check_same(
            original=original, pool=pool, tests=tests, val=val, train=train, device=device
        )
        if self.n == 1:
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
                f"fit_fn replaces fit in this process only, so it needs workers=1, but got "
                f"workers={self.n}"
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
        futures: dict[tuple[int, int], Future] = {}  # (seed, first step) → its results
        for seed, chunk in sorted(tasks, key=lambda task: -task[1][-1][1]):
            positions, _, num_classes = plans[seed]
            futures[seed, chunk[0][0]] = self._executor.submit(
                _fit_task, config, seed, positions[: chunk[-1][1]], chunk, warm_start, num_classes
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


# ---- in the worker processes ------------------------------------------------------------
_SHARED: _Shared | None = None
_BARRIER: Any = None


def _start_worker(state_file: str, threads: int, barrier: Any) -> None:
    """A worker's initializer: set its thread count and load the shared state, once."""
    global _SHARED, _BARRIER
    for signum in (signal.SIGINT, signal.SIGTERM):  # the parent stops workers (Workers.close)
        signal.signal(signum, signal.SIG_IGN)
    # tqdm's default lock is a multiprocessing RLock registered with the parent's resource
    # tracker; a worker killed by Workers.close would leave it behind ("leaked semaphore").
    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(threads)
    with open(state_file, "rb") as f:
        _SHARED = pickle.load(f)
    _BARRIER = barrier
    # The first optimizer a process makes imports torch._dynamo (1–2 s): pay it at start-up,
    # not in the first fit.
    build_optimizer(_SHARED.train.optimizer, [torch.zeros(1, requires_grad=True)], 1e-3)


def _wait_for_all() -> None:
    """Return once every worker has started (each holds one of these tasks)."""
    _BARRIER.wait(_START_TIMEOUT_S)


def _fit_task(
    config: str,
    seed: int,
    positions: np.ndarray,
    steps: list[tuple[int, int]],
    warm_start: bool,
    num_classes: int,
) -> list[tuple[Point, bytes]]:
    """Fit and score the models of ``steps``; return each point and its pickled state_dict
    (plain bytes: tensors sent through the result queue would go through shared memory)."""
    s = _SHARED
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
            device="cpu",
        )
    ]
