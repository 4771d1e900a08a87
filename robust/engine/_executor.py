"""The executor interface: :class:`Resources`, :class:`Task` and :class:`Executor`
(:func:`~robust.engine.open_executor` picks an implementation)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from robust.errors import ConfigError

ENGINES = ("local", "ray")
"""Where work runs: ``local`` processes (default) or ``ray`` tasks."""


def check_engine(engine: str) -> str:
    """``engine`` if it is one of :data:`ENGINES`, else a one-line ConfigError."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, but got engine={engine!r}")
    return engine


@dataclass(frozen=True)
class Resources:
    """What one task needs, and how often it is retried when its worker dies (Ray only: a local
    worker that dies fails the work).

    ``num_gpus`` may be a fraction (0.25: four small fits share a GPU). ``threads`` is the torch
    thread count a task runs with (one per CPU it holds, so parallel fits do not oversubscribe
    the cores)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not self.num_cpus > 0:
            raise ConfigError(f"num_cpus must be > 0, but got num_cpus={self.num_cpus}")
        if self.num_gpus < 0 or (self.num_gpus > 1 and not float(self.num_gpus).is_integer()):
            raise ConfigError(
                f"num_gpus must be a fraction in [0, 1] or a whole number, but got "
                f"num_gpus={self.num_gpus}"
            )
        if isinstance(self.max_retries, bool) or not (
            isinstance(self.max_retries, int) and self.max_retries >= 0
        ):
            raise ConfigError(f"max_retries must be an int >= 0, but got {self.max_retries!r}")

    @property
    def threads(self) -> int:
        """torch threads of a task: its whole CPUs, at least 1."""
        return max(1, int(self.num_cpus))


class Task(Protocol):
    """A submitted call (a ``concurrent.futures.Future`` is one)."""

    def result(self, timeout: float | None = None) -> Any: ...

    def cancel(self) -> bool: ...


class Executor(ABC):
    """Runs ``fn(shared, *args)`` calls; a context manager (leaving stops its workers; on
    KeyboardInterrupt at once)."""

    kind: str

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        """Run ``fn(shared, *args)`` (``fn`` a module-level function) in a worker."""

    @abstractmethod
    def close(self, *, now: bool = False) -> None:
        """Stop the workers: wait for running calls (``now``: kill them) and cancel the rest."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(now=kind is not None and issubclass(kind, KeyboardInterrupt))
