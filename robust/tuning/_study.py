"""The shared Optuna study: storage, creation (once, by name), and reading its result."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from robust.errors import ConfigError

OBJECTIVES = ("multi", "weighted")
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
_SCHEMA_ATTEMPTS = 5
SQLITE_TIMEOUT_S = 60
"""How long a process waits for another's SQLite write lock before failing."""


def storage_of(url: str) -> Any:
    """An Optuna RDB storage for ``url`` (any SQLAlchemy URL); SQLite gets a lock timeout so
    that several processes can share one file, and its directory is created."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    if not url or "://" not in url:
        raise ConfigError(f"storage must be an RDB URL such as {DEFAULT_STORAGE}, got {url!r}")
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (IntegrityError, OperationalError):
            # two processes creating a new database's schema at once: one wins the insert of
            # the schema version and the other fails; the retry finds the schema in place
            if attempt == _SCHEMA_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def open_study(storage: Any, name: str, objective: str, *, seed: int = 0, warmup: int = 1):
    """Create study ``name`` or load it if another process already has (same settings).

    ``multi``: maximise success rate, minimise perturbation, NSGA-II (seeded). ``weighted``:
    maximise one score, TPE (seeded) and a median pruner over the DGN epochs.
    """
    import optuna

    if objective not in OBJECTIVES:
        raise ConfigError(
            f"objective must be one of {', '.join(OBJECTIVES)}, but got {objective=}"
        )
    if isinstance(storage, str):
        storage = storage_of(storage)
    if objective == "multi":
        sampler = optuna.samplers.NSGAIISampler(seed=seed)
        kwargs: dict[str, Any] = {"directions": ["maximize", "minimize"]}
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
        kwargs = {
            "direction": "maximize",
            "pruner": optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup),
        }
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=sampler, load_if_exists=True, **kwargs
    )
    wanted = 2 if objective == "multi" else 1
    if len(study.directions) != wanted:
        raise ConfigError(
            f"study {name!r} exists with {len(study.directions)} objective(s), but "
            f"objective={objective} needs {wanted}; pass another study name"
        )
    return study


def pick(study: Any) -> Any:
    """The trial whose weights are used: the best trial (weighted), or on the Pareto front
    (multi) the highest success rate among trials whose perturbation is at most the front's
    median (ties: smaller perturbation). None when no trial completed."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    if len(study.directions) == 1:
        return study.best_trial
    best = study.best_trials
    median = statistics.median(t.values[1] for t in best)
    near = [t for t in best if t.values[1] <= median]
    return max(near, key=lambda t: (t.values[0], -t.values[1], -t.number))


def front(study: Any) -> list[dict[str, Any]]:
    """Rows (trial number, objective values, params) of the Pareto front or best trial."""
    trials = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    names = ["success_rate", "l2_mean"] if len(study.directions) > 1 else ["score"]
    return [
        {"trial": t.number} | dict(zip(names, t.values, strict=True)) | t.params
        for t in sorted(trials, key=lambda t: t.number)
    ]
