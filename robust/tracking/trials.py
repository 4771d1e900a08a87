"""One nested MLflow run per Optuna trial, under the tune run: the MLflow side of
:class:`robust.tuning.TrialLog` (optuna-integration's MLflowCallback is deprecated and doubles
the overhead).

Writes are batched: opening a trial is ``create_run`` plus one ``log_batch`` (its params and
tags), each scored step one ``log_batch`` (every metric of the step), and the end one
``log_batch`` (the last step's metrics and the state tag) plus ``set_terminated``.

Example:
    >>> from robust.tracking.trials import start_trial
    >>> tuning.optimize(run, study, model, ds, "nce", "multi", n_trials=8,
    ...                 total_trials=None, settings=settings, trial_log=start_trial)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from robust.tracking import store
from robust.tracking.notes import NOTE_TAG

PARENT_TAG = "mlflow.parentRunId"
STAGE = "tune_trial"
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
"""Trial state → MLflow run status (a pruned trial is KILLED, tagged robust.trial_state)."""
_PARENTS: dict[tuple[str, str], tuple[str, str, str]] = {}


class MlflowTrialLog:
    """The nested run of one trial (a :class:`robust.tuning.TrialLog`); open it with
    :func:`start_trial`.

    Attributes:
        run_id: the nested run's id.
    """

    def __init__(self, client: Any, run_id: str):
        self._client = client
        self.run_id = run_id

    def metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log every metric of one step in one ``log_batch``."""
        self._batch(metrics, step)

    def end(self, state: str, metrics: Mapping[str, float] | None = None, step: int = 0) -> None:
        """Log the last ``metrics``, the tag ``robust.trial_state`` and a one-line description
        in one ``log_batch``, then end the run with :data:`STATUS` of ``state`` (FAILED for an
        unknown one)."""
        scores = ", ".join(f"{k} {v:.3f}" for k, v in (metrics or {}).items())
        note = f"Trial {state.lower()} after {step} DGN epochs" + (
            f": {scores}." if scores else "."
        )
        self._batch(metrics or {}, step, {"robust.trial_state": state, NOTE_TAG: note})
        self._client.set_terminated(self.run_id, STATUS.get(state, "FAILED"))

    def _batch(
        self, metrics: Mapping[str, float], step: int, tags: Mapping[str, str] | None = None
    ) -> None:
        from mlflow.entities import Metric, RunTag

        ts = int(time.time() * 1000)
        self._client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), ts, int(step)) for k, v in metrics.items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
            synchronous=True,
        )


def start_trial(
    parent_run_id: str, number: int, study: str, params: Mapping[str, Any]
) -> MlflowTrialLog:
    """Open trial ``number``'s nested run under the tune run ``parent_run_id`` (a
    :data:`robust.tuning.TrialLogFactory`).

    The run is named ``<the tune run's name> trial <number>`` (``tune nce trial 7``) in the
    parent's experiment and tagged
    ``mlflow.parentRunId``, ``robust.stage=tune_trial``, ``robust.dataset`` (the parent's),
    ``robust.study`` and ``robust.trial``; ``params`` are logged (as ``str(value)``, like
    ``log_param``) with the tags in one ``log_batch``. With ``retry_of`` (a retry of a killed
    worker's trial) the dead trial's run, if still RUNNING in this store, is ended FAILED.
    """
    from mlflow.entities import Param, RunTag

    client = store.client()
    experiment_id, dataset, name = _parent(client, parent_run_id)
    run_id = client.create_run(experiment_id, run_name=f"{name} trial {number}").info.run_id
    tags = {
        PARENT_TAG: parent_run_id,
        "robust.stage": STAGE,
        "robust.dataset": dataset,
        "robust.study": study,
        "robust.trial": str(number),
    }
    client.log_batch(
        run_id,
        params=[Param(k, str(v)) for k, v in params.items()],  # as log_param
        tags=[RunTag(k, v) for k, v in tags.items()],
        synchronous=True,
    )
    if "retry_of" in params:
        _end_dead(client, experiment_id, study, int(params["retry_of"]))
    return MlflowTrialLog(client, run_id)


def _end_dead(client: Any, experiment_id: str, study: str, number: int) -> None:
    """End trial ``number``'s nested runs that its killed worker left RUNNING (in this store)
    as FAILED, tagged ``robust.trial_state=FAIL``: a retry of that trial is starting."""
    query = (
        f"tags.`robust.study` = '{study}' and tags.`robust.trial` = '{number}' "
        "and attributes.status = 'RUNNING'"
    )
    for r in client.search_runs([experiment_id], query):
        MlflowTrialLog(client, r.info.run_id).end("FAIL")


def _parent(client: Any, parent_run_id: str) -> tuple[str, str, str]:
    """The tune run's experiment id, dataset tag and name, fetched once per process and
    store."""
    key = (store.tracking_uri(), parent_run_id)
    if key not in _PARENTS:
        parent = client.get_run(parent_run_id)
        dataset = parent.data.tags.get("robust.dataset", "")
        _PARENTS[key] = (parent.info.experiment_id, dataset, parent.info.run_name or "tune")
    return _PARENTS[key]
