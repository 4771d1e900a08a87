"""Module-level functions the engine tests run in workers (a worker imports them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from robust.errors import ConfigError


def scaled(shared: dict, x: float) -> tuple[int, int, float]:
    """This worker's pid, the identity of its copy of ``shared`` and ``sum(w) * x``."""
    return os.getpid(), id(shared), float(shared["w"].sum()) * x


def threads(shared: dict) -> int:
    return torch.get_num_threads()


def refuse(shared: dict, value: int) -> None:
    raise ConfigError(f"value must be below 3, but got value={value}")


def die_once(shared: dict, marker: str, x: float) -> float:
    """Kill this worker process the first time (no marker file yet); then compute."""
    if not Path(marker).exists():
        Path(marker).touch()
        os._exit(1)
    return float(shared["w"].sum()) * x


def interval(name: str, seconds: float, *needed: tuple[str, float, float]) -> tuple:
    """A graph node: its name, when it started and ended, and what it needed."""
    start = time.time()
    time.sleep(seconds)
    return name, start, time.time(), tuple(n[0] for n in needed)


def seeded_fit(shared: object, seed: int) -> dict[str, torch.Tensor]:
    """A digits model built and fitted with ``seed``: its weights."""
    from robust import data, models, training

    ds = data.load("digits", seed=seed)
    model = models.for_dataset(ds, seed=seed)
    training.fit(
        model, ds.train, ds.val, epochs=1, lr=1e-3, batch_size=64, seed=seed, device="cpu"
    )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
