"""A study's key results as plain metrics of its parent run, so the MLflow run list can sort
and compare studies: the best robust accuracy per adaptive attack, the original's clean
accuracy, and per retraining configuration the best headline difference from random and how
many metrics beat or lose to it after the study-wide Holm adjustment.

Keys (no run ids in them): ``study/clean_accuracy/original``,
``study/robust_accuracy_best/<attack>`` (each adaptive column's best row, e.g. ``pgd``,
``autoattack``, ``adaptive-dgn-nce``, ``worst_case``), ``study/<config>/best_vs_random``
(the largest mean paired difference in combined accuracy from random),
``study/<config>/n_beat_random`` and ``study/<config>/n_worse_than_random`` (verdicts over
every metric × configuration of the study, as the report's ranking).
"""

from __future__ import annotations

import json

from robust.errors import ConfigError
from robust.results._query import robustness_matrix
from robust.results.report import _children, _download, _study_tests
from robust.tracking import labels, lineage


def study_metrics(run_id: str) -> dict[str, float]:
    """The key results of the study whose parent (``main``) run is ``run_id``; a study
    without an evaluate or retrain stage has none of their keys."""
    children = _children(lineage.fetch(run_id))
    out: dict[str, float] = {}
    if "evaluate" in children:
        evaluate = children["evaluate"].info.run_id
        transfer = robustness_matrix(evaluate, "transfer")
        out["study/clean_accuracy/original"] = float(transfer["clean"].iloc[0])
        try:
            adaptive = robustness_matrix(evaluate, "adaptive")
        except ConfigError:  # adaptive=none: no adaptive matrix
            adaptive = None
        if adaptive is not None:
            kinds = adaptive.attrs["labels"].get("kinds", {})
            for column in adaptive.columns.drop("clean"):
                key = f"study/robust_accuracy_best/{kinds.get(column) or labels.kind(column)}"
                out[key] = float(adaptive[column].max())
    docs = {
        name.split(".", 1)[1]: json.loads(_download(run.info.run_id, "summary.json").read_text())
        for name, run in children.items()
        if name.startswith("retrain.")
    }
    tests = _study_tests(docs)
    for config, doc in docs.items():
        heads = doc.get("headline", {})
        if not heads:
            continue
        out[f"study/{config}/best_vs_random"] = max(h["mean"] for h in heads.values())
        verdicts = [tests.get(("combined", config, m), {}).get("verdict", "") for m in heads]
        out[f"study/{config}/n_beat_random"] = float(sum(v.startswith("beats") for v in verdicts))
        out[f"study/{config}/n_worse_than_random"] = float(
            sum(v.startswith("worse") for v in verdicts)
        )
    return out


def most_robust(run_id: str) -> dict[str, object] | None:
    """The model of a study (parent run) or evaluate run that kept the highest robust accuracy
    under the adaptive matrix's worst case (its last column when there is no worst case; ties:
    the earlier row), among the rows whose model can be registered: train and advtrain runs,
    and of a retrain run the best model it logged as an MLflow model (``robust.best_metric``).

    Returns:
        ``{"label", "run_id", "accuracy", "column"}``, or None without an adaptive matrix.
    """
    from robust.tracking import registry

    try:
        adaptive = robustness_matrix(run_id, "adaptive")
    except ConfigError:  # adaptive=none, or no evaluate stage
        return None
    column = adaptive.columns[-1]  # "worst case" when there are several attacks
    rows = adaptive.attrs["labels"].get("rows", {})
    best: dict[str, object] | None = None
    for label, accuracy in adaptive[column].items():
        info = rows.get(label, {})
        if "run_id" not in info:
            continue
        tags = lineage.fetch(info["run_id"]).data.tags  # cached: main asks again
        if registry.MODEL_TAG not in tags:
            continue  # logged no MLflow model (a run from before they were named)
        if info.get("metric") not in (None, tags.get("robust.best_metric")):
            continue  # a retrain run's other best models are not logged as MLflow models
        if best is None or float(accuracy) > best["accuracy"]:
            best = {"label": label, "run_id": info["run_id"], "accuracy": float(accuracy),
                    "column": column}  # fmt: skip
    return best
