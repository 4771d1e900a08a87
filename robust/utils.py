"""Shared chores written once: seeding, eval mode, device choice."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from robust.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and all GPUs) so runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Map ``auto|cpu|cuda`` to a torch device; ``auto`` picks CUDA when present."""
    if isinstance(device, torch.device):
        return device
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, but got {device=}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device=cuda was requested but no CUDA GPU is available; use auto or cpu"
        )
    return torch.device(device)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode and restore its previous mode afterwards, even on error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def redact(text: str, url: str | None = None) -> str:
    """``text`` with the password of ``url`` (default: ``text`` itself, a URL) shown as ``***``:
    store and storage URLs go into messages and logs, their passwords must not."""
    import urllib.parse

    try:
        password = urllib.parse.urlsplit(text if url is None else url).password
    except ValueError:  # not a URL
        return text
    return text.replace(f":{password}@", ":***@").replace(password, "***") if password else text


def markdown_table(frame: Any) -> str:
    """A pandas DataFrame as a GitHub Markdown table (columns starting with ``_`` left out;
    None and NaN blank, ``|`` escaped), without the optional ``tabulate`` dependency."""
    cols = [c for c in frame.columns if not str(c).startswith("_")]

    def cell(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)

    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in frame[cols].itertuples(index=False):
        lines.append("| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)
