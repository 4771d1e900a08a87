"""Where runs live: the tracking URI in force and the process's MLflow client.

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
from typing import Any

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


_CLIENTS: dict[str, Any] = {}


def client():
    """The process's ``MlflowClient`` on the store in force (one per tracking URI, so a remote
    server's connection pool is reused instead of rebuilt for every look-up)."""
    from mlflow import MlflowClient

    uri = configure()
    if uri not in _CLIENTS:
        _CLIENTS[uri] = MlflowClient(tracking_uri=uri)
    return _CLIENTS[uri]
