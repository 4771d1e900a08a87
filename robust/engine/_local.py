"""Local worker processes: :class:`LocalExecutor` and :func:`cores`.

The processes are **spawned** (forking a process whose torch thread pools already run is
unsafe) and started at once (importing torch takes seconds: a stage pays it once, not inside
its first fits). ``shared`` reaches each worker once, with its start-up arguments; torch
tensors in it travel through shared memory (torch's reductions of the multiprocessing
pickler), so workers map the parent's storage instead of copying it. Workers ignore SIGINT and
SIGTERM (a signal to the process group reaches them too): the parent alone decides, so an
interrupted stage stops them in :meth:`LocalExecutor.close`, once, without a traceback each.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from robust.engine._executor import Executor
from robust.errors import ConfigError

_START_TIMEOUT_S = 600.0


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, as ``taskset`` or a container
    limits it; every core where the platform has no affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class LocalExecutor(Executor):
    """``workers`` spawned processes running ``fn(shared, *args)`` calls, each with
    ``threads`` torch threads. Starting it blocks until every worker is up."""

    kind = "local"

    def __init__(
        self,
        workers: int,
        shared: Any,
        *,
        threads: int = 1,
        warm_up: Callable[[Any], None] | None = None,
    ) -> None:
        for name, value in (("workers", workers), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, but got {name}={value!r}")
        self.workers = workers
        self.threads = threads
        context = multiprocessing.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(shared, threads, warm_up, context.Barrier(workers)),
        )
        try:
            # each of n start-up tasks waits at the barrier until n workers hold one
            for future in [self._pool.submit(_wait_for_all) for _ in range(workers)]:
                future.result()
        except BaseException:
            self.close(now=True)
            raise

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        if self._pool is None:
            raise RuntimeError("this executor is closed")
        return self._pool.submit(_call, fn, *args)

    def close(self, *, now: bool = False) -> None:
        if self._pool is None:
            return
        if now:  # ProcessPoolExecutor has no public way to stop running calls before 3.14
            for process in list((self._pool._processes or {}).values()):
                process.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None


# ---- in the worker processes ------------------------------------------------------------
_SHARED: Any = None
_BARRIER: Any = None


def _start_worker(
    shared: Any, threads: int, warm_up: Callable[[Any], None] | None, barrier: Any
) -> None:
    """A worker's initializer: signals to the parent, its thread count, the shared state."""
    global _SHARED, _BARRIER
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    # tqdm's default lock is a multiprocessing RLock registered with the parent's resource
    # tracker; a worker killed by close(now=True) would leave it behind ("leaked semaphore").
    from tqdm.auto import tqdm

    tqdm.set_lock(threading.RLock())
    import torch

    torch.set_num_threads(threads)
    _SHARED, _BARRIER = shared, barrier
    if warm_up is not None:
        warm_up(shared)


def _wait_for_all() -> None:
    """Return once every worker has started (each holds one of these tasks)."""
    _BARRIER.wait(_START_TIMEOUT_S)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(_SHARED, *args)
