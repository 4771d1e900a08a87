"""A stage run started elsewhere as a child of a study's run: :func:`child_of`.

``main`` runs its stages in its own process as nested MLflow runs of its run. With
``engine=ray`` a stage runs in a Ray worker, where no parent run is active: :func:`child_of`
tells :func:`~robust.tracking.stage` which run is the parent (tag ``mlflow.parentRunId``, the
parent's experiment) and which task of the study this is (tag ``robust.study_task``).

A worker that dies leaves its stage run RUNNING; Ray then runs the task again. So a stage
started under :func:`child_of` first marks every RUNNING run of the same parent and task
FAILED (``robust.error``: its worker died) and counts the attempts: the new run is tagged
``robust.attempt`` (1 for the first), and :func:`child_of` yields that number.

When the parent stops early (an error of another task, Ctrl-C, SIGTERM), the workers of its
running children are cancelled, which may leave their runs RUNNING: :func:`end_orphans` marks
them FAILED, so no run looks alive or reusable.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

PARENT_TAG = "mlflow.parentRunId"
TASK_TAG = "robust.study_task"
ATTEMPT_TAG = "robust.attempt"


@dataclass(frozen=True)
class Child:
    """The parent run, the study's task name, its experiment and this attempt's number."""

    parent_run_id: str
    task: str
    experiment_id: str
    attempt: int

    def tags(self) -> dict[str, str]:
        return {
            PARENT_TAG: self.parent_run_id,
            TASK_TAG: self.task,
            ATTEMPT_TAG: str(self.attempt),
        }


_CHILD: contextvars.ContextVar[Child | None] = contextvars.ContextVar("robust_child", default=None)


def current() -> Child | None:
    """The :class:`Child` a stage started now belongs to, if any."""
    return _CHILD.get()


@contextlib.contextmanager
def child_of(parent_run_id: str, task: str) -> Iterator[int]:
    """Stages started inside belong to ``parent_run_id`` as its task ``task``; yields the
    attempt number (earlier attempts left RUNNING by a dead worker are marked FAILED first)."""
    from robust.tracking import store

    client = store.client()
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    earlier = client.search_runs(
        [experiment_id],
        f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TASK_TAG}` = '{task}'",
    )
    attempt = 1 + max((int(r.data.tags.get(ATTEMPT_TAG, "1")) for r in earlier), default=0)
    for r in earlier:
        if r.info.status == "RUNNING":
            with contextlib.suppress(Exception):  # another process may be marking it too
                client.set_tag(
                    r.info.run_id,
                    "robust.error",
                    f"its worker died; the task was run again as attempt {attempt}",
                )
                client.set_terminated(r.info.run_id, "FAILED")
    token = _CHILD.set(Child(parent_run_id, task, experiment_id, attempt))
    try:
        yield attempt
    finally:
        _CHILD.reset(token)


def end_orphans(parent_run_id: str, reason: str) -> list[str]:
    """Mark every child run of ``parent_run_id`` still RUNNING FAILED, with ``robust.error``
    ``reason`` (their workers were stopped with the parent); return their run ids."""
    from robust.tracking import store

    client = store.client()
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    running = client.search_runs(
        [experiment_id],
        f"tags.`{PARENT_TAG}` = '{parent_run_id}' and attributes.status = 'RUNNING'",
    )
    for r in running:
        with contextlib.suppress(Exception):  # its worker may be ending it right now
            client.set_tag(r.info.run_id, "robust.error", reason)
            client.set_terminated(r.info.run_id, "FAILED")
    return [r.info.run_id for r in running]
