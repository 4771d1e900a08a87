"""Where runs live: the tracking URI, run look-ups and artifact downloads.

The default store is ``sqlite:///mlruns/mlflow.db`` (relative to the working directory) with
artifacts under ``mlruns/``; ``MLFLOW_TRACKING_URI`` or ``mlflow.set_tracking_uri`` overrides
it. MLflow's own default
(``sqlite:///mlflow.db``) is a different file, so the README exports the variable for the
``mlflow`` CLI too.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from robust.errors import ConfigError

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
REUSED_FROM_TAG = "robust.reused_from"
log = logging.getLogger(__name__)


def tracking_uri() -> str:
    """The tracking URI in force: ``MLFLOW_TRACKING_URI``, else one set with
    ``mlflow.set_tracking_uri`` in this process, else the project default."""
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    if "mlflow" in sys.modules:  # never import mlflow just to ask
        from mlflow.tracking._tracking_service import utils

        if utils.is_tracking_uri_set():
            return str(utils.get_tracking_uri())
    return DEFAULT_TRACKING_URI


def configure() -> str:
    """Point MLflow at the store in force (creating ``mlruns/`` for the default) and return it."""
    import mlflow

    if not sys.stderr.isatty():  # MLflow's download bars would flood logs and CI output
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri()
    if uri == DEFAULT_TRACKING_URI:
        Path("mlruns").mkdir(exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def client():
    """An ``MlflowClient`` on the store in force."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=configure())


def get_run(run_id: str, *, stage: str | tuple[str, ...] | None = None):
    """The run ``run_id``, following reuse pointers; checks it exists, FINISHED, of ``stage``
    (one stage name or a tuple of accepted ones).

    Raises:
        ConfigError: unknown id, a run that did not finish, or a run of another stage.
    """
    from mlflow.exceptions import MlflowException

    c = client()
    try:
        run = c.get_run(run_id)
    except MlflowException:
        raise ConfigError(
            f"no run with id {run_id!r} in the tracking store {tracking_uri()}; pass the id of "
            "a FINISHED run (see `mlflow ui` or robust.results)"
        ) from None
    target = run.data.tags.get(REUSED_FROM_TAG)
    if target:
        run = c.get_run(target)
    if run.info.status != "FINISHED":
        raise ConfigError(f"run {run_id} is {run.info.status}; only FINISHED runs can be used")
    actual = run.data.tags.get("robust.stage")
    accepted = (stage,) if isinstance(stage, str) else stage
    if accepted is not None and actual not in accepted:
        wanted = " or ".join(repr(s) for s in accepted)
        raise ConfigError(f"run {run_id} is a {actual!r} run, but a {wanted} run is required")
    return run


def params_of(run) -> dict[str, str]:
    """A run's params as the stage used them: ``resolved.<key>`` (logged when ``mlflow run``
    had already logged the user's ``auto``) replaces ``<key>``."""
    raw = dict(run.data.params)
    resolved = {
        k.removeprefix("resolved."): v for k, v in raw.items() if k.startswith("resolved.")
    }
    return {k: v for k, v in raw.items() if not k.startswith("resolved.")} | resolved


def latest_run(stage: str, dataset: str | None = None) -> str:
    """The id of the newest FINISHED ``stage`` run (on ``dataset``) in any experiment.

    Raises:
        ConfigError: there is none, with the command that makes one.
    """
    c = client()
    filt = f"tags.`robust.stage` = '{stage}' and attributes.status = 'FINISHED'"
    if dataset:
        filt += f" and tags.`robust.dataset` = '{dataset}'"
    exps = [e.experiment_id for e in c.search_experiments()]
    runs = c.search_runs(exps, filt, order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        on = f" on dataset {dataset!r}" if dataset else ""
        raise ConfigError(
            f"no FINISHED {stage} run{on} in {tracking_uri()}; run `mlflow run . -e {stage}"
            + (f" -P dataset={dataset}" if dataset else "")
            + " --env-manager local` first or pass its run id"
        )
    return runs[0].info.run_id


def download_artifacts(run_id: str, path: str, dst: str | os.PathLike | None = None) -> Path:
    """Download artifact ``path`` of run ``run_id`` (following reuse pointers); return its path."""
    run = get_run(run_id)
    local = client().download_artifacts(run.info.run_id, path, str(dst) if dst else None)
    return Path(local)


def find_runs(
    stage: str, dataset: str | None = None, *, tags: dict[str, str] | None = None
) -> list[str]:
    """Ids of every FINISHED ``stage`` run (on ``dataset``, carrying each of ``tags``) in any
    experiment, oldest first; reuse pointers are not listed (their target is)."""
    c = client()
    filt = f"tags.`robust.stage` = '{stage}' and attributes.status = 'FINISHED'"
    if dataset:
        filt += f" and tags.`robust.dataset` = '{dataset}'"
    for key, value in (tags or {}).items():
        filt += f" and tags.`{key}` = '{value}'"
    exps = [e.experiment_id for e in c.search_experiments()]
    ids, token = [], None
    while True:
        page = c.search_runs(exps, filt, order_by=["attributes.start_time ASC"], page_token=token)
        ids += [r.info.run_id for r in page if REUSED_FROM_TAG not in r.data.tags]
        token = page.token
        if not token:
            return ids
