"""Heartbeats: a stage run that is RUNNING says so every few seconds, so a run whose process
died without a word (``kill -9``, a lost machine, an out-of-memory kill) does not stay RUNNING
forever.

A running stage sets the tag ``robust.heartbeat`` (Unix seconds) every ``ROBUST_HEARTBEAT_S``
seconds (default 30; the interval is tagged too, ``robust.heartbeat_interval_s``). A RUNNING run
whose last beat is older than :data:`STALE_AFTER` intervals is *lost*: the next stage that
starts in its experiment, or ``robust.results``/a lineage look-up that meets it, marks it FAILED
with ``robust.error = lost heartbeat``. A RUNNING run without a heartbeat tag (made by another
tool, or by ``mlflow run`` before robust started) is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from typing import Any

HEARTBEAT_TAG = "robust.heartbeat"
INTERVAL_TAG = "robust.heartbeat_interval_s"
ENV = "ROBUST_HEARTBEAT_S"
DEFAULT_INTERVAL_S = 30.0
STALE_AFTER = 3
"""A beat older than this many intervals means the process is gone."""
LOST = "lost heartbeat"
log = logging.getLogger(__name__)


def interval_s() -> float:
    """The heartbeat interval in force: ``ROBUST_HEARTBEAT_S`` (a positive number) or 30 s."""
    raw = os.environ.get(ENV)
    if raw is None:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        from robust.errors import ConfigError

        raise ConfigError(f"{ENV} must be a positive number of seconds, but got {ENV}={raw!r}")
    return value


class Heartbeat:
    """Beat for ``run_id`` every ``interval`` seconds from a daemon thread until stopped."""

    def __init__(self, client: Any, run_id: str, interval: float | None = None):
        self._client = client
        self._run_id = run_id
        self.interval = interval_s() if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="robust-heartbeat", daemon=True)

    def tags(self) -> dict[str, str]:
        """The first beat and the interval, for a caller that logs them with its own tags (one
        request instead of two)."""
        return {INTERVAL_TAG: f"{self.interval:g}", HEARTBEAT_TAG: f"{time.time():.3f}"}

    def start(self, *, beat_now: bool = True) -> Heartbeat:
        """Start beating; ``beat_now=False`` when :meth:`tags` were logged just before."""
        if beat_now:
            self._client.set_tag(self._run_id, INTERVAL_TAG, f"{self.interval:g}")
            self._beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _beat(self) -> None:
        self._client.set_tag(self._run_id, HEARTBEAT_TAG, f"{time.time():.3f}")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._beat()
            except Exception as exc:  # a store hiccup must not kill the stage: beat next time
                log.warning("heartbeat of run %s not sent: %s", self._run_id, exc)


def is_lost(run: Any, now: float | None = None) -> bool:
    """True for a RUNNING run whose last heartbeat is older than STALE_AFTER intervals."""
    tags = run.data.tags
    if run.info.status != "RUNNING" or HEARTBEAT_TAG not in tags:
        return False
    try:
        last = float(tags[HEARTBEAT_TAG])
        every = float(tags.get(INTERVAL_TAG, DEFAULT_INTERVAL_S))
    except ValueError:
        return False
    return (time.time() if now is None else now) - last > STALE_AFTER * every


def mark_lost(client: Any, run: Any) -> Any:
    """Mark a lost run FAILED with ``robust.error = lost heartbeat``; return it as it is now."""
    run_id = run.info.run_id
    log.warning("run %s lost its heartbeat (its process died): marking it FAILED", run_id)
    client.set_tag(run_id, "robust.error", LOST)
    client.set_terminated(run_id, "FAILED")
    return client.get_run(run_id)


_SWEPT: dict[tuple[str, ...], float] = {}


def sweep(client: Any, experiment_ids: list[str]) -> list[str]:
    """Mark every lost RUNNING run of these experiments FAILED; return their ids.

    A process sweeps the same experiments at most once per heartbeat interval (a study's
    stages start seconds apart, and no run can go stale faster than that)."""
    from robust.tracking import store

    key = (store.tracking_uri(), *sorted(experiment_ids))
    now = time.monotonic()
    if now - _SWEPT.get(key, -math.inf) < interval_s():
        return []
    _SWEPT[key] = now
    runs = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'")
    lost = [r for r in runs if is_lost(r)]
    for r in lost:
        with contextlib.suppress(Exception):  # another process may be marking it too
            mark_lost(client, r)
    return [r.info.run_id for r in lost]
