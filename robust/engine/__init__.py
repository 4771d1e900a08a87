"""Where independent work runs: local processes (the default) or Ray, behind one interface.

An :class:`Executor` runs calls ``fn(shared, *args)`` of module-level functions; ``shared`` is
the state every call needs (a model, a pool, test sets), sent to each worker **once** (local:
with the process's start-up; Ray: one ``ray.put``) instead of with every task. ``submit``
returns a :class:`Task` (``result()``, ``cancel()``).

* :func:`open_executor` ``("local", shared, workers=n)`` — ``n`` spawned processes
  (``concurrent.futures``); Ray is never imported. A worker that dies fails the work.
* :func:`open_executor` ``("ray", shared, address=...)`` — Ray tasks on the instance this
  process is connected to (:func:`connect`: a new local one, or a cluster with
  ``address="auto"`` or ``"<host>:<port>"``). Each task declares its :class:`Resources`
  (CPUs, a fraction of a GPU) and is retried when its worker dies (``max_retries``);
  how many run at once is the cluster's to decide.
* :func:`run_graph` runs :class:`Node` s that depend on each other's results: locally in
  order, on Ray as tasks that start when what they need exists (``main``'s stages).

The engine knows nothing of models or tracking: it sits below the algorithm packages (the
retraining grid uses it) and above :mod:`robust.errors` only.
"""

from __future__ import annotations

from robust.engine._executor import (
    ENGINES,
    Executor,
    Resources,
    Task,
    check_engine,
)
from robust.engine._graph import Node, run_graph
from robust.engine._local import LocalExecutor, cores
from robust.engine._open import open_executor
from robust.engine._ray import (
    RayExecutor,
    cluster_gpus,
    connect,
    disconnect,
    is_connected,
    node_id,
)

__all__ = [
    "ENGINES",
    "Executor",
    "LocalExecutor",
    "Node",
    "RayExecutor",
    "Resources",
    "Task",
    "check_engine",
    "cluster_gpus",
    "connect",
    "cores",
    "disconnect",
    "is_connected",
    "node_id",
    "open_executor",
    "run_graph",
]
