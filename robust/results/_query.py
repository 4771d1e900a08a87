"""The query functions: finished runs, retraining curves, robustness matrices and costs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from robust.errors import ConfigError
from robust.tracking import lineage, store

RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "stage",
    "dataset",
    "status",
    "start_time",
    "end_time",
    "duration_s",
    "parent_run_id",
    "experiment_id",
    "run_name",
    "upstream",
    "params",
    "time/total_s",
    "energy/total_kwh",
    "emissions/total_kg",
    "error",
)
"""The columns of :func:`runs`, in order."""

CURVE_COLUMNS: tuple[str, ...] = (
    "run_id",
    "config",
    "metric",
    "original",
    "seed",
    "step",
    "n_inputs",
    "fraction",
    "n_adversarial",
    "accuracy_clean",
    "accuracy_adversarial",
    "accuracy_combined",
    "precision_macro",
    "recall_macro",
    "val_accuracy",
    "fit_s",
)
"""The columns of :func:`retraining_curves`, in order."""

COST_COLUMNS: tuple[str, ...] = (
    "run_id",
    "stage",
    "dataset",
    "phase",
    "time_s",
    "cpu_percent",
    "peak_rss_mb",
    "gpu_utilization_percent",
    "gpu_peak_memory_mb",
    "energy_kwh",
    "emissions_kg",
    "energy_method",
    "energy_estimate",
)
"""The columns of :func:`costs`, in order."""

STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
KINDS = ("transfer", "adaptive", "per_class")
_PARENT_TAG = "mlflow.parentRunId"
_CHILD_TAG = "robust.child."
_PHASE_KEY = re.compile(r"^energy/(.+)_kwh$")


def runs(
    stage: str | None = None,
    dataset: str | None = None,
    parent: str | None = None,
    status: str | None = "FINISHED",
) -> pd.DataFrame:
    """Stage runs in every experiment of the store in force, oldest first.

    Reuse pointers (runs tagged ``robust.reused_from``, made when ``mlflow run`` found an
    identical finished stage) are not listed; their target is. With ``parent``, the rows are
    the parent's children: runs tagged ``mlflow.parentRunId`` = ``parent`` and the runs it names
    in ``robust.child.<stage>`` tags (reused stages), pointers replaced by their targets.

    Args:
        stage: only runs tagged ``robust.stage`` = ``stage`` (``train``, ``attack``, …).
        dataset: only runs tagged ``robust.dataset`` = ``dataset``.
        parent: only the children of this run id.
        status: only runs in this status (``FINISHED`` by default); None for every status.

    Returns:
        One row per run, with the columns of :data:`RUN_COLUMNS`: ``run_id``, ``stage``,
        ``dataset``, ``status``; ``start_time`` and ``end_time`` (UTC timestamps, ``NaT`` while
        running); ``duration_s``; ``parent_run_id`` (missing for a top-level run);
        ``experiment_id``, ``run_name``; ``upstream`` (dict: upstream name → run id, from the
        ``robust.upstream.<name>`` tags); ``params`` (dict of the logged params, strings);
        ``time/total_s``, ``energy/total_kwh``, ``emissions/total_kg`` (NaN when not logged);
        ``error`` (the ``robust.error`` tag of a failed run). Missing values are
        NaN/None (``pd.isna``).

    Raises:
        ConfigError: an unknown status, a filter value with a quote, or an unknown parent.
    """
    if status is not None and status not in STATUSES:
        raise ConfigError(f"status must be one of {', '.join(STATUSES)} or None, got {status!r}")
    conditions = []
    for key, value in (("robust.stage", stage), ("robust.dataset", dataset)):
        if value is not None:
            conditions.append(f"tags.`{key}` = '{lineage.quoted(value, key)}'")
    if status is not None:
        conditions.append(f"attributes.status = '{status}'")
    if parent is None:
        found = [r for r in lineage.search(conditions) if store.REUSED_FROM_TAG not in r.data.tags]
    else:
        found = [r for r in _children(parent) if _matches(r, stage, dataset, status)]
    rows = [_run_row(r) for r in found]
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def retraining_curves(run: str) -> pd.DataFrame:
    """The retraining curves of a retrain run, or of every retrain child of a parent run.

    Read from each run's ``tables/curves.csv`` (written by the ``retrain`` stage).

    Args:
        run: a retrain run id, or a parent (``main``) run id with retrain child runs, whose
            curves are concatenated oldest first.

    Returns:
        Long format, one row per (run, metric, seed, step), with the columns of
        :data:`CURVE_COLUMNS`: ``run_id``, ``config`` (``c1``/``c2``/``c3``), ``metric``
        (guidance metric), ``original`` (which original model: 0 unless the run retrained
        from several), ``seed``, ``step`` (0 is the original model in ``c2``/``c3``),
        ``n_inputs`` (retraining inputs), ``fraction`` (of the pool), ``n_adversarial`` (of those
        inputs), ``accuracy_clean``, ``accuracy_adversarial``, ``accuracy_combined``,
        ``precision_macro``, ``recall_macro`` (on the combined test set, all in [0, 1]),
        ``val_accuracy`` (on the selection set the best step is chosen on; NaN with
        ``select_on=test``) and ``fit_s`` (training seconds).

    Raises:
        ConfigError: an unknown run id, or a run that is neither a retrain run nor a parent
            of one.
    """
    frames = []
    for r in _stage_runs(run, "retrain"):
        run_id = r.info.run_id
        table = pd.read_csv(lineage.Lineage().artifact(run_id, "tables/curves.csv"))
        table.insert(0, "config", r.data.params.get("config"))
        table.insert(0, "run_id", run_id)
        frames.append(table.reindex(columns=list(CURVE_COLUMNS)))
    return pd.concat(frames, ignore_index=True)


def robustness_matrix(run: str, kind: str = "transfer") -> pd.DataFrame:
    """An evaluate run's robust-accuracy matrix (top-1 accuracy in [0, 1]).

    Args:
        run: an evaluate run id, or a parent (``main``) run id with evaluate child runs (the
            newest is used).
        kind: ``transfer`` (columns ``clean`` and one per attack run, crafted on the original
            model), ``adaptive`` (columns ``clean``, each adaptive attack crafted on each
            row's model, ``worst case``) or ``per_class`` (one column per class, under the
            worst case); the last two only when the run had adaptive attacks.

    Returns:
        ``matrix/<kind>.csv``: index ``model`` (row labels: the runs' names, such as
        ``train digits_cnn``, ``advtrain fgsm α=0.5``, ``retrain c2 lsa``), one column per
        label (``clean``, ``fgsm ε=0.3``, ``dgn-nce``, …).
        ``attrs["labels"]`` holds ``matrix/labels.json`` (``original``: the original train run;
        ``rows`` and ``columns``: label → run id, name, stage, params; ``adaptive``: the
        adaptive attacks' settings; ``kinds``: column label → the key part of its metrics),
        ``attrs["cells"]`` the rows of ``matrix/<kind>_cells.csv`` as dicts (each cell's
        ``model``, ``test set``, ``correct``, ``n``, ``accuracy`` and Wilson 95 % ``ci_low``,
        ``ci_high``; empty for runs from before it existed) and
        ``attrs["run_id"]`` the evaluate run.

    Raises:
        ConfigError: an unknown kind or run id, a run that is neither an evaluate run nor a
            parent of one, or an adaptive matrix the run did not compute.
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    run_id = _stage_runs(run, "evaluate")[-1].info.run_id
    present = {Path(a.path).name for a in store.client().list_artifacts(run_id, "matrix")}
    if f"{kind}.csv" not in present:
        raise ConfigError(
            f"evaluate run {run_id} has no {kind} matrix (matrix/{kind}.csv); the adaptive "
            "and per-class matrices exist only for runs with adaptive attacks"
        )
    up = lineage.Lineage()
    matrix = pd.read_csv(up.artifact(run_id, f"matrix/{kind}.csv"), index_col="model")
    labels = up.json(run_id, "matrix/labels.json") if "labels.json" in present else {}
    matrix.attrs["labels"] = labels
    cells = f"{kind}_cells.csv"
    matrix.attrs["cells"] = (
        pd.read_csv(up.artifact(run_id, f"matrix/{cells}")).to_dict("records")
        if cells in present
        else []
    )
    matrix.attrs["run_id"] = run_id
    return matrix


def costs(run: str | Iterable[str]) -> pd.DataFrame:
    """What stage runs cost: time, energy, CO2 and CPU/GPU utilisation per phase.

    Args:
        run: a stage run id (a ``tune`` run: its own phases, not its trials), a study's
            parent (``main``) run id (then each FINISHED child run, not the parent itself,
            whose phases span its children), or several run ids.

    Returns:
        One row per (stage run, phase), the phases in the order they ran and then ``total``
        (the whole run), with the columns of :data:`COST_COLUMNS`: ``run_id``, ``stage``,
        ``dataset``, ``phase``; ``time_s`` (wall seconds, ``time/<phase>_s``); ``cpu_percent``
        (this process's CPU, 100 = one core busy, ``process/<phase>_cpu_percent``);
        ``peak_rss_mb`` (``process/<phase>_peak_rss_mb``); ``gpu_utilization_percent`` and
        ``gpu_peak_memory_mb`` (``gpu/<phase>_…``, NaN without a GPU); ``energy_kwh`` and
        ``emissions_kg`` (codecarbon, ``energy/<phase>_kwh``, ``emissions/<phase>_kg``);
        ``energy_method`` (how codecarbon measured: tag ``robust.energy.method``) and
        ``energy_estimate`` (True when the energy is a TDP estimate).

    Raises:
        ConfigError: an unknown run id, or a run that did not finish.
    """
    ids = [run] if isinstance(run, str) else list(run)
    c = store.client()
    rows = []
    for run_id in ids:
        r = lineage.Lineage().run(run_id)
        # a study's parent (main, or any run that is no stage) has stage children; a stage
        # run's own children (a tune run's trials) have no phases
        study = r.data.tags.get("robust.stage") in (None, "main")
        children = [k for k in _children(r.info.run_id) if k.info.status == "FINISHED"]
        for target in (children if study else []) or [r]:
            rows += _cost_rows(c, target)
    return pd.DataFrame(rows, columns=list(COST_COLUMNS))


# ---- helpers -----------------------------------------------------------------------------
def _children(parent: str) -> list:
    """The child runs of ``parent`` (see :func:`runs`), oldest first, pointers followed."""
    tags = lineage.fetch(parent, follow=False).data.tags
    found = lineage.search([f"tags.`{_PARENT_TAG}` = '{lineage.quoted(parent, 'parent')}'"])
    named = [v for k, v in sorted(tags.items()) if k.startswith(_CHILD_TAG)]
    out: dict[str, Any] = {}
    for r in found + [lineage.fetch(i, follow=False) for i in named]:
        r = lineage.fetch(r.info.run_id)  # a pointer's target (free when fetched before)
        out.setdefault(r.info.run_id, r)
    return sorted(out.values(), key=lambda r: r.info.start_time)


def _matches(r, stage: str | None, dataset: str | None, status: str | None) -> bool:
    tags = r.data.tags
    return (
        (stage is None or tags.get("robust.stage") == stage)
        and (dataset is None or tags.get("robust.dataset") == dataset)
        and (status is None or r.info.status == status)
    )


def _stage_runs(run_id: str, stage: str) -> list:
    """``run_id`` itself when it is a ``stage`` run, else its FINISHED ``stage`` children."""
    r = lineage.Lineage().run(run_id)
    actual = r.data.tags.get("robust.stage")
    if actual == stage:
        return [r]
    kids = [k for k in _children(r.info.run_id) if _matches(k, stage, None, "FINISHED")]
    if not kids:
        raise ConfigError(
            f"run {run_id} is a {actual!r} run with no FINISHED {stage} child run; pass a "
            f"{stage} run or a parent (main) run that has one"
        )
    return kids


def _timestamp(ms: int | None) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC") if ms else pd.NaT


def _run_row(r) -> dict[str, Any]:
    info, tags, metrics = r.info, r.data.tags, r.data.metrics
    prefix = "robust.upstream."
    return {
        "run_id": info.run_id,
        "stage": tags.get("robust.stage"),
        "dataset": tags.get("robust.dataset") or r.data.params.get("dataset"),
        "status": info.status,
        "start_time": _timestamp(info.start_time),
        "end_time": _timestamp(info.end_time),
        "duration_s": (info.end_time - info.start_time) / 1000 if info.end_time else float("nan"),
        "parent_run_id": tags.get(_PARENT_TAG),
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "upstream": {k[len(prefix) :]: v for k, v in tags.items() if k.startswith(prefix)},
        "params": dict(r.data.params),
        "time/total_s": metrics.get("time/total_s", float("nan")),
        "energy/total_kwh": metrics.get("energy/total_kwh", float("nan")),
        "emissions/total_kg": metrics.get("emissions/total_kg", float("nan")),
        "error": tags.get("robust.error"),
    }


def _cost_rows(client, r) -> list[dict[str, Any]]:
    run_id, tags, metrics = r.info.run_id, r.data.tags, r.data.metrics
    phases = [m.group(1) for k in metrics if (m := _PHASE_KEY.match(k)) and m.group(1) != "total"]
    when = {p: client.get_metric_history(run_id, f"energy/{p}_kwh")[0].timestamp for p in phases}
    nan = float("nan")
    rows = []
    for p in [*sorted(phases, key=lambda p: (when[p], p)), "total"]:
        rows.append(
            {
                "run_id": run_id,
                "stage": tags.get("robust.stage"),
                "dataset": tags.get("robust.dataset") or r.data.params.get("dataset"),
                "phase": p,
                "time_s": metrics.get(f"time/{p}_s", nan),
                "cpu_percent": metrics.get(f"process/{p}_cpu_percent", nan),
                "peak_rss_mb": metrics.get(f"process/{p}_peak_rss_mb", nan),
                "gpu_utilization_percent": metrics.get(f"gpu/{p}_utilization_percent", nan),
                "gpu_peak_memory_mb": metrics.get(f"gpu/{p}_peak_memory_mb", nan),
                "energy_kwh": metrics.get(f"energy/{p}_kwh", nan),
                "emissions_kg": metrics.get(f"emissions/{p}_kg", nan),
                "energy_method": tags.get("robust.energy.method"),
                "energy_estimate": tags.get("robust.energy.estimate") == "true",
            }
        )
    return rows


def load_model(run: str, path: str = lineage.MODEL_ARTIFACT, device: str = "cpu"):
    """The model a FINISHED stage run logged, rebuilt from safetensors + spec (never pickle).

    Args:
        run: a train or advtrain run id (a reuse pointer is followed), or any run that logged
            a :func:`robust.models.save` directory.
        path: the artifact directory: ``model`` (train, advtrain) or ``best/<metric>``
            (retrain's best model per metric).
        device: ``cpu``, ``cuda`` or ``auto``.

    Raises:
        ConfigError: an unknown or unfinished run. DataError: no such model artifact.
    """
    from robust import models

    return models.load(lineage.Lineage().artifact(run, path), device=device)
