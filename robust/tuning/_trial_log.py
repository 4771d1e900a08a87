"""One nested MLflow run per Optuna trial, under the tune run: a small logger of our own
(optuna-integration's MLflowCallback is deprecated and doubles the overhead)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

PARENT_TAG = "mlflow.parentRunId"
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
"""Trial state → MLflow run status (a pruned trial is KILLED, tagged robust.trial_state)."""


class TrialLog:
    """Open the nested run of one trial; log params and metrics; close it with the state.

    Uses the store's ``MlflowClient`` (``robust.tracking``), so this module imports no mlflow.
    """

    def __init__(self, parent_run_id: str, number: int, study: str):
        from robust.tracking import store

        self._client = store.client()
        parent = self._client.get_run(parent_run_id)
        run = self._client.create_run(
            parent.info.experiment_id,
            run_name=f"trial-{number}",
            tags={
                PARENT_TAG: parent_run_id,
                "robust.stage": "tune_trial",
                "robust.dataset": parent.data.tags.get("robust.dataset", ""),
                "robust.study": study,
                "robust.trial": str(number),
            },
        )
        self.run_id = run.info.run_id

    def params(self, params: Mapping[str, Any]) -> None:
        for key, value in params.items():
            self._client.log_param(self.run_id, key, value)

    def metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        ts = int(time.time() * 1000)
        for key, value in metrics.items():
            self._client.log_metric(self.run_id, key, float(value), ts, step)

    def end(self, state: str) -> None:
        """``state``: the Optuna trial state name, COMPLETE, PRUNED or FAIL."""
        self._client.set_tag(self.run_id, "robust.trial_state", state)
        self._client.set_terminated(self.run_id, STATUS.get(state, "FAILED"))
