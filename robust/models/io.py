"""Save and load zoo models as ``model.safetensors`` + ``spec.json`` (never pickle).

A saved model is a directory holding the weights (``safetensors.torch.save_file``) and the spec
needed to rebuild the architecture with :func:`robust.models.build`::

    {"format_version": 1, "architecture": "digits_cnn", "input_shape": [1, 8, 8],
     "num_classes": 10, "dataset": "digits", "classes": ["0", ..., "9"]}

Loading rebuilds the architecture and reads the weights with ``safetensors.torch.load_file``:
no code from the file is ever executed (``torch.load`` and pickle are not used).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from robust.errors import ConfigError, DataError
from robust.models.layers import ZooModel
from robust.models.zoo import MODELS, build
from robust.utils import resolve_device

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
SPEC_FILE = "spec.json"

_RUN_ID = re.compile(r"^[0-9A-Za-z_-]+$")


def save(
    model: nn.Module, directory: str | os.PathLike[str], *, dataset: str, classes: Sequence[str]
) -> Path:
    """Write ``model.safetensors`` and ``spec.json`` for a zoo model into ``directory``.

    Also records ``dataset`` and ``classes`` in ``model.spec``.

    Args:
        model: a zoo model (it has ``.spec`` with a known architecture).
        directory: created if missing; existing files of the same names are replaced.
        dataset: dataset name the model was trained on.
        classes: class names, one per output logit.

    Returns:
        The directory, as a Path.

    Raises:
        ConfigError: not a zoo model, or ``len(classes)`` differs from the number of logits.
    """
    spec = getattr(model, "spec", None)
    if not isinstance(spec, dict) or spec.get("architecture") not in MODELS:
        raise ConfigError(
            f"model must be a zoo model built by robust.models.build (one with .spec naming one "
            f"of {', '.join(MODELS)}), but got {type(model).__name__}"
        )
    classes = [str(c) for c in classes]
    if len(classes) != spec["num_classes"]:
        raise ConfigError(
            f"classes must name each of the model's {spec['num_classes']} outputs, but got "
            f"{len(classes)} names"
        )
    spec = {**spec, "dataset": str(dataset), "classes": classes}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_FILE, metadata={"format_version": str(FORMAT_VERSION)})
    document = {
        "format_version": FORMAT_VERSION,
        "architecture": spec["architecture"],
        "input_shape": list(spec["input_shape"]),
        "num_classes": spec["num_classes"],
        "dataset": spec["dataset"],
        "classes": spec["classes"],
    }
    (directory / SPEC_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    model.spec = spec
    return directory


def _read_spec(path: Path) -> dict[str, Any]:
    """Parse and check ``spec.json``; every problem is a DataError naming the file."""
    if not path.is_file():
        raise DataError(f"{path} is missing; a saved model directory needs {SPEC_FILE}")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} must be valid JSON, but reading it failed: {err}") from err
    required = ("format_version", "architecture", "input_shape", "num_classes", "classes")
    missing = [key for key in required if not isinstance(spec, dict) or key not in spec]
    if missing:
        raise DataError(f"{path} must hold {', '.join(required)}, but lacks {', '.join(missing)}")
    if spec["format_version"] != FORMAT_VERSION:
        raise DataError(
            f"{path} must have format_version {FORMAT_VERSION}, but has {spec['format_version']!r}"
        )
    if spec["architecture"] not in MODELS:
        raise DataError(
            f"{path} must name an architecture among {', '.join(MODELS)}, but names "
            f"{spec['architecture']!r}"
        )
    return spec


def _load_directory(directory: Path, device: torch.device) -> ZooModel:
    """Rebuild the architecture from ``spec.json`` and fill it from ``model.safetensors``."""
    spec_path, weights_path = directory / SPEC_FILE, directory / WEIGHTS_FILE
    spec = _read_spec(spec_path)
    try:
        model = build(spec["architecture"], tuple(spec["input_shape"]), spec["num_classes"])
    except (ConfigError, TypeError) as err:
        raise DataError(f"{spec_path} describes a model that cannot be built: {err}") from err
    if not weights_path.is_file():
        raise DataError(f"{weights_path} is missing; a saved model directory needs {WEIGHTS_FILE}")
    try:
        state = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(
            f"{weights_path} must be a safetensors file, but reading it failed: {err}"
        ) from err
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise DataError(
            f"{weights_path} must hold the weights of {spec['architecture']} as described in "
            f"{spec_path}, but they do not match: {err}"
        ) from err
    model.spec = {
        **model.spec,
        "dataset": spec.get("dataset"),
        "classes": [str(c) for c in spec["classes"]],
    }
    return model.to(device).eval()


def load(source: str | os.PathLike[str], device: str | torch.device = "cpu") -> ZooModel:
    """Load a saved zoo model from a directory written by :func:`save`.

    A model logged by a stage run is loaded by its run id with
    ``robust.results.load_model(run_id)``, which downloads the run's ``model/`` artifact and
    calls this (the model zoo knows nothing of MLflow).

    Args:
        source: a directory written by :func:`save`.
        device: ``"cpu"``, ``"cuda"``, ``"auto"`` or a torch.device.

    Returns:
        The model on ``device``, in eval mode, with ``.spec`` including dataset and classes.

    Raises:
        DataError: missing or invalid ``spec.json`` / ``model.safetensors`` (the message names
            the file), or a path that is not a directory (a run id is pointed to
            ``robust.results.load_model``).
    """
    target = resolve_device(device)
    path = Path(source)
    if path.is_dir():
        return _load_directory(path, target)
    text = os.fspath(source)
    hint = (
        "; to load a stage run's model by run id use robust.results.load_model(run_id)"
        if _RUN_ID.match(text) and not path.exists()
        else ""
    )
    raise DataError(f"source must be a saved model directory, but {text!r} is not one{hint}")
