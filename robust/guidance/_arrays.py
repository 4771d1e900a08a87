"""Checking and converting the arrays the guidance metrics take (numpy or torch, any device)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from robust.errors import ConfigError, DataError


def device_for(device: str | torch.device | None) -> torch.device:
    """``device``, or CUDA when present and the CPU otherwise."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def traces(name: str, acts: object, dtype: torch.dtype = torch.float32) -> Tensor:
    """``acts`` as an (N, features) tensor of ``dtype`` on the CPU: more axes are flattened."""
    if isinstance(acts, Tensor):
        acts = acts.detach().cpu()
    t = torch.as_tensor(np.asarray(acts) if not isinstance(acts, Tensor) else acts)
    if t.dim() < 2:
        raise DataError(
            f"{name} must be activation traces of shape (N, features), but got shape "
            f"{tuple(t.shape)}"
        )
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise DataError(f"{name} must be numeric, but got dtype {t.dtype}")
    t = t.reshape(len(t), -1).to(dtype)
    if t.shape[1] == 0:
        raise DataError(f"{name} must have at least one feature, but got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise DataError(f"{name} must be finite, but holds NaN or inf")
    return t


def labels(name: str, pred: object, n: int) -> Tensor:
    """``pred`` as an (n,) int64 CPU tensor of class indices ≥ 0."""
    if isinstance(pred, Tensor):
        pred = pred.detach().cpu().numpy()
    a = np.asarray(pred)
    if a.shape != (n,):
        raise DataError(f"{name} must have one class per trace, shape ({n},), but got {a.shape}")
    if a.dtype.kind not in "iu":
        raise DataError(f"{name} must hold integer classes, but got dtype {a.dtype}")
    if n and a.min() < 0:
        raise DataError(f"{name} must hold classes ≥ 0, but has {a.min()}")
    return torch.from_numpy(a.astype(np.int64))


def probabilities(probs: object) -> Tensor:
    """``probs`` as an (N, K) float64 CPU tensor whose rows are distributions."""
    if isinstance(probs, Tensor):
        probs = probs.detach().cpu()
    p = torch.as_tensor(np.asarray(probs) if not isinstance(probs, Tensor) else probs)
    if p.dim() != 2 or p.shape[1] == 0 or not p.is_floating_point():
        raise DataError(
            f"probs must be float class probabilities of shape (N, K), but got "
            f"{p.dtype} of shape {tuple(p.shape)}"
        )
    p = p.to(torch.float64)
    if len(p) and (
        not torch.isfinite(p).all() or p.min() < -1e-6 or (p.sum(1) - 1).abs().max() > 1e-3
    ):
        raise DataError(
            "probs must be probabilities (rows ≥ 0 summing to 1), but are not; pass "
            "torch.softmax(logits, 1), not the logits"
        )
    return p.clamp_min(0)


def chunk_rows(n_cols: int, chunk_size: int | None, budget: int = 1 << 24) -> int:
    """Rows per chunk of an (rows, n_cols) distance block: ``chunk_size``, or about ``budget``
    elements (64 MiB of float32) so memory stays bounded whatever the reference set."""
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ConfigError(
                f"chunk_size must be an integer of at least 1, but got {chunk_size=}"
            )
        return chunk_size
    return max(1, min(8192, budget // max(1, n_cols)))
