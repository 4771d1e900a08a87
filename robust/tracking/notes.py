"""Run descriptions: the Markdown the MLflow UI shows as a run's "Description"
(``mlflow.note.content``), and links from one run to another.

Every stage run ends with a few lines saying what it did and its headline numbers; ``main``'s
run gets the study's findings and a link to each child. Links are relative to the UI
(``#/experiments/<id>/runs/<id>``), so they work on any host that serves the store; they open
the UI's model-training view (``workflowType=machine_learning``: MLflow 3.17's UI opens its
GenAI view otherwise, whatever the experiment's kind tag says).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

NOTE_TAG = "mlflow.note.content"
"""The tag MLflow renders as a run's description."""
UI_ENV = "ROBUST_UI_URL"
"""Environment variable naming the address of the MLflow UI that shows a local store."""
VIEW = "?workflowType=machine_learning"
"""The query that opens MLflow 3.17's UI in its model-training view."""


def ui_base() -> str | None:
    """The address of the MLflow UI showing this store, for links that must be absolute
    (images in report.md, run links in report.html): ``$ROBUST_UI_URL``, else the tracking URI
    when it is a server (``http(s)://…``); None for a local store, whose UI address is the
    user's choice (``mlflow ui --port``)."""
    from robust.tracking import store

    base = os.environ.get(UI_ENV) or store.tracking_uri()
    return base.rstrip("/") if base.startswith(("http://", "https://")) else None


def run_url(run_id: str, experiment_id: str, base: str | None = None) -> str:
    """The UI's address of a run: relative to the UI's root, or absolute under ``base``."""
    path = f"#/experiments/{experiment_id}/runs/{run_id}{VIEW}"
    return f"{base}/{path}" if base else path


def artifact_url(base: str, run_id: str, path: str) -> str:
    """The address at which the server ``base`` serves artifact ``path`` of ``run_id``."""
    from urllib.parse import urlencode

    return f"{base}/get-artifact?{urlencode({'path': path, 'run_uuid': run_id})}"


def run_link(run_id: str, name: str | None = None) -> str:
    """A Markdown link to ``run_id`` labelled with ``name`` (auto: the run's name); the run
    is read through the lineage cache (one request per run and process)."""
    from robust.tracking.lineage import fetch

    info = fetch(run_id, follow=False).info
    return f"[{name or info.run_name or run_id}]({run_url(run_id, info.experiment_id)})"


def percent(value: float, digits: int = 1) -> str:
    """``0.9889`` → ``98.9 %``."""
    return f"{100 * value:.{digits}f} %"


def bullets(lines: Iterable[str]) -> str:
    """Markdown bullet lines."""
    return "\n".join(f"- {line}" for line in lines)


def reused(run_id: str) -> str:
    """The description of a pointer to the reused run ``run_id``: a link, then its own."""
    from robust.tracking.lineage import fetch

    own = fetch(run_id, follow=False).data.tags.get(NOTE_TAG, "")
    lead = f"Reused {run_link(run_id)}: the same parameters, upstream runs, code and data."
    return f"{lead}\n\n{own}".strip()
