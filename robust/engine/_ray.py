"""Ray tasks: :func:`connect`, :func:`disconnect`, :func:`is_connected` and
:class:`RayExecutor`. Ray is imported here only, when ``engine=ray`` is asked for."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from robust.engine._executor import Executor, Resources
from robust.errors import ConfigError, RobustError

log = logging.getLogger(__name__)
_STARTED_HERE = False
"""Whether :func:`connect` started the Ray instance (then :func:`disconnect` stops it)."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "engine=ray needs Ray, which is not installed: pip install -e '.[ray]'"
        ) from None
    return ray


def is_connected() -> bool:
    """Whether this process is connected to Ray (a driver after :func:`connect`, or a Ray
    worker); never imports Ray."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def node_id() -> str | None:
    """The Ray node this process runs a task on; None outside a Ray task (never imports
    Ray)."""
    if not is_connected():
        return None
    context = sys.modules["ray"].get_runtime_context()
    return context.get_node_id() if context.get_task_id() is not None else None


def cluster_gpus() -> float:
    """The GPUs of the Ray cluster this process is connected to (0 when not connected)."""
    if not is_connected():
        return 0.0
    return float(sys.modules["ray"].cluster_resources().get("GPU", 0))


def connect(
    address: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    num_cpus: int | None = None,
) -> None:
    """Connect this process to Ray once: to the cluster at ``address`` (``auto``: the one
    ``ray start`` runs on this machine; ``<host>:<port>``; ``ray://<host>:<port>``), or with
    None to a new local instance of ``num_cpus`` CPUs (default: all). ``env`` is set in every
    worker's environment (workers of a ``ray start`` cluster do not inherit the driver's).
    A no-op in a process already connected (a Ray worker, say).

    Raises:
        ConfigError: Ray is not installed, or no cluster answers at ``address``.
    """
    global _STARTED_HERE
    ray = _ray()
    if ray.is_initialized():
        return
    runtime_env = {"env_vars": dict(env)} if env else None
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            runtime_env=runtime_env,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"at {address}" if address else "locally"
        raise ConfigError(
            f"Ray could not be started or reached {where}: {' '.join(str(exc).split())[:300]}; "
            "start a cluster with `ray start --head` (then ray_address=auto), or leave "
            "ray_address unset for a local instance"
        ) from None
    _STARTED_HERE = address is None
    log.info("connected to Ray (%s)", address or "a new local instance")


def disconnect() -> None:
    """Disconnect from Ray (stopping the instance if :func:`connect` started it)."""
    global _STARTED_HERE
    if is_connected():
        sys.modules["ray"].shutdown()
    _STARTED_HERE = False


class RayExecutor(Executor):
    """Ray tasks running ``fn(shared, *args)``: ``shared`` is put in the object store once;
    each task holds ``resources`` and is retried ``resources.max_retries`` times when its
    worker dies (an exception the call raises is not retried: it is the result)."""

    kind = "ray"

    def __init__(
        self,
        shared: Any,
        *,
        resources: Resources | None = None,
        address: str | None = None,
        warm_up: Callable[[Any], None] | None = None,
    ) -> None:
        ray = _ray()
        connect(address)
        self.resources = resources or Resources()
        self._ref = ray.put(shared)
        self._warm_up = warm_up
        self._remote = ray.remote(_ray_call).options(
            num_cpus=self.resources.num_cpus,
            num_gpus=self.resources.num_gpus,
            max_retries=self.resources.max_retries,
        )
        self._tasks: list[_RayTask] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> _RayTask:
        if self._ref is None:
            raise RuntimeError("this executor is closed")
        ref = self._remote.remote(fn, self._ref, self.resources.threads, self._warm_up, *args)
        task = _RayTask(ref)
        self._tasks.append(task)
        return task

    def close(self, *, now: bool = False) -> None:
        if self._ref is None:
            return
        for task in self._tasks:
            if not task.done():
                task.cancel(force=now)
        self._tasks.clear()
        self._ref = None  # the object store frees the shared state


class _RayTask:
    """A submitted Ray task. ``result`` waits with ``ray.get`` (so a task that waits on its own
    sub-tasks gives its CPU back to them meanwhile) and raises robust's own errors as they are
    (one line), not wrapped in Ray's."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def done(self) -> bool:
        ray = sys.modules["ray"]
        ready, _ = ray.wait([self.ref], timeout=0)
        return bool(ready)

    def result(self, timeout: float | None = None) -> Any:
        ray = sys.modules["ray"]
        try:
            return ray.get(self.ref, timeout=timeout)
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, RobustError | KeyboardInterrupt):
                raise exc.cause from None
            raise

    def cancel(self, *, force: bool = False) -> bool:
        ray = sys.modules["ray"]
        try:
            ray.cancel(self.ref, force=force)
        except Exception:  # already finished, or its worker is gone
            return False
        return True


_WARMED: set[str] = set()


def _ray_call(
    fn: Callable[..., Any],
    shared: Any,
    threads: int,
    warm_up: Callable[[Any], None] | None,
    *args: Any,
) -> Any:
    """A task in a Ray worker: ``threads`` torch threads, ``warm_up`` once per process."""
    import torch

    torch.set_num_threads(threads)
    if warm_up is not None:  # a new copy of the function comes with every task: key by name
        key = f"{warm_up.__module__}.{warm_up.__qualname__}"
        if key not in _WARMED:
            warm_up(shared)
            _WARMED.add(key)
    return fn(shared, *args)
