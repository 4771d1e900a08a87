"""Human labels of model and attack runs (matrix rows and columns), read from their params.

Rows: ``train-<id8>``, ``advtrain-<attack>-<id8>`` (static: the attack run's method; online:
``online-<method>``). Columns: ``<method>[-l<norm>]-<id8>`` (``dgn-<loss>-<id8>``,
``guided_retraining-<id8>``), ``<id8>`` the run id's first 8 characters.
"""

from __future__ import annotations

import re
from typing import Any

from robust.tracking.lineage import Lineage, param, params_of


def method_label(params: dict[str, str]) -> str | None:
    """``pgd``, ``fgsm-l2``, ``dgn-nce``, ``guided_retraining``, … from an attack run's params."""
    if preset := param(params, "preset"):
        return preset
    if (method := param(params, "method")) is None:
        return None
    if method == "dgn":
        return f"dgn-{param(params, 'loss') or 'nce'}"
    norm = param(params, "norm") or "inf"
    return method if norm == "inf" else f"{method}-l{norm}"


def kind(label: str) -> str:
    """A row or column label without its run id, as a metric key part: ``fgsm-1a2b3c4d`` →
    ``fgsm``, ``adaptive-dgn-nce-44894132`` → ``adaptive-dgn-nce``, ``worst case`` →
    ``worst_case``."""
    return re.sub(r"-[0-9a-f]{8}$", "", label).replace(" ", "_")


def safe(label: str) -> str:
    """Only characters MLflow allows in metric keys and tag names."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def model_label(up: Lineage, run_id: str) -> str:
    """A model run's row label: its stage, what an advtrain run trained on, the id's start."""
    run = up.run(run_id)
    stage = run.data.tags.get("robust.stage", "model")
    trained_on = _trained_on(up, run) if stage != "train" else None
    return safe("-".join(filter(None, (stage, trained_on, run_id[:8]))))


def attack_label(up: Lineage, run_id: str) -> str:
    """An attack run's column label: its method (and norm, loss or preset), the id's start."""
    return safe(f"{method_label(up.params(run_id)) or 'attack'}-{run_id[:8]}")


def describe(up: Lineage, run_id: str) -> dict[str, Any]:
    """A labelled run's id, stage, source model and params (for ``matrix/labels.json``)."""
    run = up.run(run_id)
    tags = run.data.tags
    return {
        "run_id": run_id,
        "stage": tags.get("robust.stage"),
        "source_model": tags.get("robust.upstream.model"),
        "params": dict(params_of(run)),
    }


def _trained_on(up: Lineage, run) -> str | None:
    """What an advtrain run trained on: its attack run's method (static, seed 004; online dgn
    trains those generators further) or its own online fgsm/pgd, as ``online-<method>``."""
    params = params_of(run)
    online = param(params, "mode") == "online"
    method = param(params, "method")
    attack = run.data.tags.get("robust.upstream.attack")
    if attack and not (online and method in ("fgsm", "pgd")):
        method = method_label(up.params(attack))
    return f"online-{method}" if online and method else method


def matrix_labels(
    up: Lineage,
    original: str,
    rows: dict[str, str],
    columns: dict[str, str],
    sizes: dict[str, int],
    adaptive: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """``matrix/labels.json``: the original train run, each row's and column's run (id, stage,
    source model, params; columns with their set size ``n``) and the adaptive attacks.

    Args:
        rows, columns: label → run id (``columns`` without ``clean``).
        sizes: column label (``clean`` included) → number of test inputs.
        adaptive: attack name → its settings (:meth:`robust.attacks.AttackSpec.describe`).
    """
    return {
        "original": original,
        "rows": {label: describe(up, run_id) for label, run_id in rows.items()},
        "columns": {"clean": {"run_id": original, "split": "test", "n": sizes["clean"]}}
        | {label: describe(up, run_id) | {"n": sizes[label]} for label, run_id in columns.items()},
        "adaptive": adaptive,
    }
