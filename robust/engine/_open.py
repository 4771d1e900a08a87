"""Opening an executor of either engine: :func:`open_executor`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from robust.engine._executor import Executor, Resources, check_engine


def open_executor(
    engine: str,
    shared: Any,
    *,
    workers: int = 1,
    resources: Resources | None = None,
    address: str | None = None,
    warm_up: Callable[[Any], None] | None = None,
) -> Executor:
    """An executor of ``engine`` (:data:`ENGINES`) whose calls receive ``shared``.

    Args:
        engine: ``local`` or ``ray``.
        shared: what every call gets as its first argument; sent to each worker once.
        workers: local: the processes (≥ 1), started now; ray: not used (the cluster's free
            resources decide how many tasks run at once).
        resources: each task's (:class:`Resources`; default one CPU, no GPU, 3 retries).
            Local workers run with ``resources.threads`` torch threads.
        address: ray: the cluster to connect to if this process is not connected yet
            (:func:`~robust.engine.connect`); None starts a local Ray instance.
        warm_up: ``warm_up(shared)`` runs once in each worker process before its first call
            (a one-off import, say).

    Raises:
        ConfigError: an unknown engine, ``workers`` below 1, Ray not installed or not reachable.
    """
    check_engine(engine)
    resources = resources or Resources()
    if engine == "local":
        from robust.engine._local import LocalExecutor

        return LocalExecutor(workers, shared, threads=resources.threads, warm_up=warm_up)
    from robust.engine._ray import RayExecutor

    return RayExecutor(shared, resources=resources, address=address, warm_up=warm_up)
