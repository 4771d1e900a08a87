"""Where each trial's params and metrics go: a small interface, implemented elsewhere.

Tuning knows no tracking store. :func:`~robust.tuning.optimize` takes a :data:`TrialLogFactory`
and opens one :class:`TrialLog` per trial through it; the MLflow implementation (a nested run
per trial, each step's metrics in one batch) is :func:`robust.tracking.trials.start_trial`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL")
"""The Optuna trial states a trial's log ends with."""


class TrialLog(Protocol):
    """The log of one running trial, opened with its params.

    Attributes:
        run_id: the id under which the log is stored (recorded on the Optuna trial as its
            ``mlflow_run_id`` user attribute), or None when it has none.
    """

    run_id: str | None

    def metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log every metric of one step (e.g. a DGN epoch) at once."""

    def end(self, state: str, metrics: Mapping[str, float] | None = None, step: int = 0) -> None:
        """Log the last step's ``metrics`` (if any) and close the log with ``state``, one of
        :data:`TRIAL_STATES`."""


TrialLogFactory = Callable[[str, int, str, Mapping[str, Any]], TrialLog]
"""``(parent_run_id, trial_number, study, params) → TrialLog``: opens one trial's log under
the tune run ``parent_run_id``, with the trial's params."""


class NoTrialLog:
    """A :class:`TrialLog` that keeps nothing (``optimize`` without ``trial_log``)."""

    run_id: str | None = None

    def __init__(self, *args: Any) -> None:
        del args

    def metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Drop the metrics."""

    def end(self, state: str, metrics: Mapping[str, float] | None = None, step: int = 0) -> None:
        """Drop the metrics."""
