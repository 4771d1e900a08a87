"""A graph of dependent calls: :class:`Node` and :func:`run_graph`.

Locally the nodes run one after another in this process, in the order given; on Ray each node
is a task whose arguments include the results of the nodes it needs, so Ray itself starts it
once they exist, and nodes that do not depend on each other run at the same time.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from robust.engine._executor import Resources, check_engine
from robust.errors import ConfigError, RobustError


@dataclass(frozen=True)
class Node:
    """``fn(*args, *results)``, where ``results`` are those of the nodes in ``needs``, in that
    order. ``fn`` must be a module-level function (Ray sends it by reference)."""

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    needs: tuple[str, ...] = ()


def _check(nodes: Sequence[Node]) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.name in seen:
            raise ConfigError(f"two nodes are named {node.name!r}")
        missing = [n for n in node.needs if n not in seen]
        if missing:
            raise ConfigError(
                f"node {node.name!r} needs {', '.join(missing)}, which no node before it is"
            )
        seen.add(node.name)


def run_graph(
    engine: str, nodes: Sequence[Node], *, resources: Resources | None = None
) -> Iterator[tuple[str, Any]]:
    """Run ``nodes`` (in an order where each comes after those it needs) and yield
    ``(name, result)`` as each finishes.

    ``local``: in this process, in the given order. ``ray``: every node is submitted at once
    as a task holding ``resources`` (retried when its worker dies); the first node that fails
    cancels the others and its error is raised (robust's own errors as themselves).
    """
    check_engine(engine)
    _check(nodes)
    if engine == "local":
        results: dict[str, Any] = {}
        for node in nodes:
            results[node.name] = node.fn(*node.args, *(results[n] for n in node.needs))
            yield node.name, results[node.name]
        return
    yield from _run_on_ray(nodes, resources or Resources())


def _run_on_ray(nodes: Sequence[Node], resources: Resources) -> Iterator[tuple[str, Any]]:
    from robust.engine._ray import _ray, connect

    ray = _ray()
    connect()  # a no-op when connected (the caller connects to the cluster it wants)
    remote = ray.remote(_node_call).options(
        num_cpus=resources.num_cpus,
        num_gpus=resources.num_gpus,
        max_retries=resources.max_retries,
    )
    refs: dict[str, Any] = {}
    for node in nodes:
        refs[node.name] = remote.remote(
            node.fn, resources.threads, node.args, *(refs[n] for n in node.needs)
        )
    names = {ref: name for name, ref in refs.items()}
    pending = list(refs.values())
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, RobustError):
                    raise exc.cause from None
                raise
            yield names[done[0]], result
    finally:
        interrupted = sys.exc_info()[0] is not None and issubclass(
            sys.exc_info()[0], KeyboardInterrupt
        )
        for ref in pending:
            with contextlib.suppress(Exception):  # already finished, or its worker is gone
                ray.cancel(ref, force=interrupted)


def _node_call(fn: Callable[..., Any], threads: int, args: tuple[Any, ...], *needed: Any) -> Any:
    import torch

    torch.set_num_threads(threads)
    return fn(*args, *needed)
