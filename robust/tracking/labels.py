"""Human labels of model and attack runs (matrix rows and columns), read from their runs.

A label is the run's name in the MLflow UI: rows ``train digits_cnn``, ``advtrain fgsm α=0.5``,
``advtrain pgd α=0 online``, ``retrain c2 lsa`` (a retrain run's best model of one metric);
transfer columns the attack run's name without ``attack`` (``fgsm ε=0.3``, ``dgn-nce``,
``guided_retraining``). Two runs that share a name are told apart by their run ids' first 8
characters (``train digits_cnn (1a2b3c4d)``). A column's *kind* (:func:`column_kind`: ``fgsm``,
``fgsm-l2``, ``dgn-nce``) is the key part its metrics use.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from robust.tracking.lineage import Lineage, param, params_of

_GREEK = {"α": "alpha", "β": "beta", "ε": "eps"}


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
    """A column label as a metric key part, for matrices without recorded kinds: ``worst case``
    → ``worst_case``; an old label's run id is dropped (``fgsm-1a2b3c4d`` → ``fgsm``)."""
    return safe(re.sub(r"-[0-9a-f]{8}$", "", label).replace(" ", "_"))


def safe(label: str) -> str:
    """Only characters MLflow allows in metric keys and tag names."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def slug(label: str) -> str:
    """A label as a file or logged-model name: letters, digits, ``_`` and ``-`` only (MLflow's
    model names refuse ``/ : . % " '``), e.g. ``advtrain fgsm α=0.5`` →
    ``advtrain-fgsm-alpha-0_5``.

    Example:
        >>> slug("retrain c2 lsa")
        'retrain-c2-lsa'
    """
    for greek, latin in _GREEK.items():
        label = label.replace(greek, f" {latin} ")
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", label.replace(".", "_")).strip("-")
    return re.sub(r"-{2,}", "-", name) or "model"


def model_label(up: Lineage, run_id: str) -> str:
    """A model run's row label: its name (``train digits_cnn``, ``advtrain fgsm α=0.5``); a run
    from before runs were named: its stage and what an advtrain run trained on."""
    run = up.run(run_id)
    stage = run.data.tags.get("robust.stage", "model")
    name = _own_name(run, stage)
    if name:
        return name
    if stage == "retrain":
        what = param(params_of(run), "config")
    else:
        what = _trained_on(up, run) if stage != "train" else None
    return " ".join(filter(None, (stage, what)))


def attack_label(up: Lineage, run_id: str) -> str:
    """An attack run's column label: its name without ``attack`` (``fgsm ε=0.3``,
    ``dgn-nce``); a run from before runs were named: its method."""
    name = _own_name(up.run(run_id), "attack")
    return name.removeprefix("attack ") if name else column_kind(up, run_id)


def column_kind(up: Lineage, run_id: str) -> str:
    """An attack column's kind, the key part of its metrics: ``fgsm``, ``fgsm-l2``, ``dgn-nce``."""
    return safe(method_label(up.params(run_id)) or "attack")


def unique(labels: list[str], run_ids: list[str]) -> list[str]:
    """``labels`` with every one that several runs share followed by its run id's first 8
    characters: ``train digits_cnn (1a2b3c4d)``."""
    counts = Counter(labels)
    return [
        f"{label} ({run_id[:8]})" if counts[label] > 1 else label
        for label, run_id in zip(labels, run_ids, strict=True)
    ]


def describe(up: Lineage, run_id: str) -> dict[str, Any]:
    """A labelled run's id, name, stage, source model and params (for ``matrix/labels.json``)."""
    run = up.run(run_id)
    tags = run.data.tags
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "stage": tags.get("robust.stage"),
        "source_model": tags.get("robust.upstream.model"),
        "params": dict(params_of(run)),
    }


def _own_name(run, stage: str) -> str | None:
    """The run's name when robust gave it one (it starts with the stage and is not MLflow's
    random one or the old ``<stage>-<dataset>``)."""
    name = (run.info.run_name or "").removesuffix(" (reused)")
    return name if name.startswith(f"{stage} ") else None


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
    kinds: dict[str, str],
) -> dict[str, Any]:
    """``matrix/labels.json``: the original train run, each row's and column's run (id, name,
    stage, source model, params; columns with their set size ``n``), the adaptive attacks and
    every column's kind (the key part of its metrics).

    Args:
        rows, columns: label → run id (``columns`` without ``clean``).
        sizes: column label (``clean`` included) → number of test inputs.
        adaptive: attack name → its settings (:meth:`robust.attacks.AttackSpec.describe`).
        kinds: column label (transfer and adaptive) → its kind.
    """
    return {
        "original": original,
        "rows": {label: describe(up, run_id) for label, run_id in rows.items()},
        "columns": {"clean": {"run_id": original, "split": "test", "n": sizes["clean"]}}
        | {label: describe(up, run_id) | {"n": sizes[label]} for label, run_id in columns.items()},
        "adaptive": adaptive,
        "kinds": kinds,
    }
