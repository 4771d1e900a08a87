"""Tracking: the stage run (MLflow, timing, resources, energy, reuse) and run look-ups.

This is one of the two places that import mlflow (with ``robust.results``).
"""

from robust.tracking.stage import StageRun, fail_adopted_run, one_line, stage
from robust.tracking.store import (
    DEFAULT_TRACKING_URI,
    download_artifacts,
    find_runs,
    get_run,
    latest_run,
    params_of,
    tracking_uri,
)

__all__ = [
    "DEFAULT_TRACKING_URI",
    "StageRun",
    "download_artifacts",
    "fail_adopted_run",
    "find_runs",
    "get_run",
    "latest_run",
    "one_line",
    "params_of",
    "stage",
    "tracking_uri",
]
