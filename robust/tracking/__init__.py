"""Tracking: the stage run (MLflow, timing, resources, energy, reuse), lineage (upstream runs
fetched once) and the store.

This is one of the two places that import mlflow (with ``robust.results``), and only lazily:
importing it loads no mlflow.
"""

from robust.tracking import notes, registry
from robust.tracking.child import child_of, end_orphans
from robust.tracking.lineage import MODEL_STAGES, Lineage, fetch, param, params_of
from robust.tracking.stage import StageRun, close, fail_adopted_run, one_line, stage
from robust.tracking.store import DEFAULT_TRACKING_URI, tracking_uri

__all__ = [
    "DEFAULT_TRACKING_URI",
    "MODEL_STAGES",
    "Lineage",
    "StageRun",
    "child_of",
    "close",
    "end_orphans",
    "fail_adopted_run",
    "fetch",
    "notes",
    "one_line",
    "param",
    "params_of",
    "registry",
    "stage",
    "tracking_uri",
]
