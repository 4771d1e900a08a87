"""The datasets a run used or made, as MLflow dataset inputs (the UI's "Datasets" column and
filter): name, digest, source and a context, never the tensors themselves.

* a clean split: ``<dataset>/<split>`` with context ``training`` (train), ``validation``
  (val) or ``evaluation`` (test); its digest hashes the data files' fingerprint (the one in
  the reuse key), the split seed and the preprocessing, so the same digest means the same
  inputs; its source is the directory the files were read from (``bundled`` for digits);
* an adversarial set: ``<attack run name>/<split>`` with context ``adversarial``; its digest
  hashes the attack run and split (a run's artifacts never change), its source the artifact
  (``runs:/<id>/adversarial/<split>.safetensors``).

Each carries a profile (number of inputs, input shape, classes) and no schema.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

CONTEXTS = {"train": "training", "val": "validation", "test": "evaluation"}
"""The context of each clean split."""
ADVERSARIAL = "adversarial"
"""The context of an adversarial set."""
CONTEXT_TAG = "mlflow.data.context"


def digest(*parts: Any) -> str:
    """A short stable digest of ``parts`` (MLflow keeps at most 36 characters)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _input(name: str, key: str, source_type: str, uri: str, profile: Mapping[str, Any], context):
    from mlflow.entities import Dataset, DatasetInput, InputTag

    dataset = Dataset(
        name=name, digest=key, source_type=source_type, source=json.dumps({"uri": uri}),
        profile=json.dumps(dict(profile)),
    )  # fmt: skip
    return DatasetInput(dataset, tags=[InputTag(CONTEXT_TAG, context)])


def split_input(ds: Any, split: str, fingerprint: str, path: str, preprocessing: Mapping):
    """The dataset input of clean split ``split`` of ``ds`` (a :class:`robust.data.Dataset`)
    read from ``path``; ``preprocessing``: what else decides its inputs (seed, size, …)."""
    part = getattr(ds, split)
    profile = {"num_inputs": len(part.y), "input_shape": list(ds.input_shape),
               "classes": ds.num_classes}  # fmt: skip
    key = digest(fingerprint, ds.name, split, dict(preprocessing))
    return _input(f"{ds.name}/{split}", key, "local", path, profile, CONTEXTS[split])


def adversarial_input(run_id: str, run_name: str, split: str, n: int, input_shape, classes: int):
    """The dataset input of attack run ``run_id``'s adversarial set of ``split`` (``n``
    inputs)."""
    profile = {"num_inputs": n, "input_shape": list(input_shape), "classes": classes}
    uri = f"runs:/{run_id}/adversarial/{split}.safetensors"
    name = f"{run_name}/{split}"
    return _input(name, digest(run_id, split), "mlflow_run_artifact", uri, profile, ADVERSARIAL)
