"""Run descriptions: the Markdown the MLflow UI shows as a run's "Description"
(``mlflow.note.content``), and links from one run to another.

Every stage run ends with a few lines saying what it did and its headline numbers; ``main``'s
run gets the study's findings and a link to each child. Links are relative to the UI
(``#/experiments/<id>/runs/<id>``), so they work on any host that serves the store.
"""

from __future__ import annotations

from collections.abc import Iterable

NOTE_TAG = "mlflow.note.content"
"""The tag MLflow renders as a run's description."""


def run_url(run_id: str, experiment_id: str) -> str:
    """The UI's address of a run, relative to the UI's root."""
    return f"#/experiments/{experiment_id}/runs/{run_id}"


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
