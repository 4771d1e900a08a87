"""The parameters every stage shares, defined once (each with one docstring, its ``--help``).

A stage's ``Params`` subclasses :class:`Common` (or :class:`Training`, which adds the training
schedule, when it trains a model), adds its own fields and calls ``super().__post_init__()``
from its own check.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines import _cli
from robust import data, engine, tracking
from robust.errors import ConfigError
from robust.training import OPTIMIZERS, TrainConfig, defaults_for
from robust.utils import DEVICES


@dataclass(frozen=True)
class Common:
    dataset: str = "digits"
    """Dataset name: digits (bundled), mnist, fashion, cifar10, gtsrb or intel. A stage that
    reads upstream runs uses the newest FINISHED ones on it when their ids are auto, and refuses
    runs on another."""
    seed: int = 0
    """Seed of everything the stage draws at random; the same seed gives the same numbers."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    data_dir: str | None = None
    """Directory holding the dataset files; auto: the one the train run read ($ROBUST_DATA,
    else ./data; digits is bundled and needs none)."""
    force: bool = False
    """Recompute even if an identical FINISHED run exists."""
    quiet: bool = False
    """Turn progress bars off (what the stage did is still logged)."""
    experiment: str | None = None
    """MLflow experiment of the run; auto: robust-<dataset> (mlflow run's --experiment-name
    wins; a stage inside main goes to main's)."""

    def __post_init__(self) -> None:
        _cli.check_choice("dataset", self.dataset, data.DATASETS)
        _cli.check_choice("device", self.device, DEVICES)
        _cli.check_min("seed", self.seed, 0)


@dataclass(frozen=True)
class Training(Common):
    epochs: int | None = None
    """Training epochs; auto: the dataset's default (seed 000's protocol)."""
    lr: float | None = None
    """Learning rate; auto: the dataset's default."""
    batch_size: int | None = None
    """Mini-batch size; auto: the dataset's default."""
    optimizer: str | None = None
    """rmsprop, adam or sgd; auto: the dataset's default."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer is not None:
            _cli.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _cli.check_min("epochs", self.epochs, 1)
        _cli.check_min("batch_size", self.batch_size, 1)
        _cli.check_min("lr", self.lr, 0, strict=True)

    def with_training_defaults(self) -> Training:
        """A copy with epochs, lr, batch size and optimizer resolved (see :meth:`training`)."""
        t = self.training()
        return dataclasses.replace(
            self, epochs=t.epochs, lr=t.lr, batch_size=t.batch_size, optimizer=t.optimizer
        )

    def training(self) -> TrainConfig:
        """Epochs, lr, batch size and optimizer with every auto replaced by the dataset's
        default."""
        d = defaults_for(self.dataset)
        return TrainConfig(
            self.optimizer or d.optimizer,
            self.lr or d.lr,
            self.epochs or d.epochs,
            self.batch_size or d.batch_size,
        )


@dataclass(frozen=True)
class Registering:
    """A stage that trains a model: whether to register it (a mixin)."""

    register: bool = False
    """Register the run's model in the MLflow model registry, as a version of the model named
    like the run's experiment (robust-digits by default); a reused run is registered once."""


def registering(run: Callable[..., str]) -> Callable[..., str]:
    """A stage's ``main`` from the function that runs (or reuses) it: the same call, then,
    with ``register``, the run's model registered (:func:`robust.tracking.registry.register`);
    returns the run id."""

    @functools.wraps(run)
    def main(p: Registering, *args: Any, **kwargs: Any) -> str:
        run_id = run(p, *args, **kwargs)
        if p.register:
            tracking.registry.register(run_id)
        return run_id

    return main


@dataclass(frozen=True)
class Fanout:
    """Where a stage's independent work runs (a mixin: call :meth:`check_fanout`)."""

    engine: str = "local"
    """Where independent work runs: local (processes on this machine) or ray (tasks on a Ray
    instance: a new local one, or the cluster at ray_address). Results do not depend on it."""
    ray_address: str = "local"
    """With engine=ray, the Ray instance: local (a new one on this machine, for this stage),
    auto (the cluster `ray start` runs here), or <host>:<port> / ray://<host>:<port>. A cluster
    needs a tracking server, not a SQLite file (MLFLOW_TRACKING_URI)."""

    def check_fanout(self) -> None:
        _cli.check_choice("engine", self.engine, engine.ENGINES)
        if not self.ray_address.strip():
            raise ConfigError("ray_address must be local, auto or <host>:<port>, but got ''")
        if self.ray_address != "local" and self.engine != "ray":
            raise ConfigError(
                f"ray_address is used with engine=ray only, but got engine={self.engine} "
                f"and ray_address={self.ray_address}"
            )

    @property
    def cluster(self) -> str | None:
        """The address to connect to; None for a new local Ray instance."""
        return None if self.ray_address == "local" else self.ray_address
