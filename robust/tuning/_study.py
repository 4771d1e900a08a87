"""The shared Optuna study: storage, creation (once, by name), the per-worker sampler, and
reading its result.

Several workers (``tune`` processes, on one machine or several) share a study in one RDB
storage (SQLite for one machine, PostgreSQL for several). Each worker seeds its sampler with
:func:`sampler_seed` of (seed, worker), so no two workers propose the same trials; the storage
records a heartbeat per running trial, so a killed worker's trial turns FAIL after the grace
period and is queued again (WAITING, same params) for another worker.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robust.errors import ConfigError
from robust.utils import redact

OBJECTIVES = ("multi", "weighted")
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
_SCHEMA_ATTEMPTS = 5
SQLITE_TIMEOUT_S = 60
"""How long a process waits for another's SQLite write lock before failing."""
HEARTBEAT_ENV = "ROBUST_TUNE_HEARTBEAT_S"
"""Environment variable: seconds between a running trial's heartbeats (default 60)."""
GRACE_ENV = "ROBUST_TUNE_GRACE_S"
"""Environment variable: seconds without a heartbeat after which a running trial is failed
(default 3 × the heartbeat interval)."""
HEARTBEAT_S = 60
MAX_RETRY = 3
"""How often a killed worker's trial is queued again (a trial that kills every worker that runs
it, e.g. by running out of memory, is given up after that)."""
_MASK = 0xFFFFFFFF


def _fmix32(h: int) -> int:
    """MurmurHash3's 32-bit finaliser: a bijection of [0, 2³²) that scatters nearby inputs."""
    h &= _MASK
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def sampler_seed(seed: int, worker: int) -> int:
    """The sampler seed of one worker: ``fmix32((fmix32(seed) + worker) mod 2³²)``.

    ``fmix32`` (MurmurHash3's finaliser) is a bijection of 32-bit integers, so for one ``seed``
    two different workers in [0, 2³²) never get the same sampler seed, and the same
    (seed, worker) always gets the same one.
    """
    if seed < 0:
        raise ConfigError(f"seed must be at least 0, but got {seed=}")
    if not 0 <= worker <= _MASK:
        raise ConfigError(f"worker must be between 0 and {_MASK}, but got {worker=}")
    return _fmix32(_fmix32(seed) + worker)


def worker_of(worker: int | None, run_id: str) -> int:
    """``worker``, or when None (auto) an index taken from the hex run id ``run_id`` (the
    tune run's): unique among concurrent workers in practice (a 32-bit slice of a random run
    id), but not reproducible; pass explicit indices for that."""
    if worker is not None:
        return worker
    try:
        return int(run_id, 16) & _MASK
    except ValueError:
        raise ConfigError(f"run_id must be a hexadecimal run id, but got {run_id=}") from None


def heartbeat() -> tuple[int, int]:
    """(heartbeat interval, grace period) in seconds, from :data:`HEARTBEAT_ENV` and
    :data:`GRACE_ENV` (tests shorten them)."""
    interval = _env_seconds(HEARTBEAT_ENV, HEARTBEAT_S)
    return interval, _env_seconds(GRACE_ENV, 3 * interval)


def _env_seconds(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name} must be a whole number of seconds ≥ 1, but got {name}={raw!r}")
    return value


def storage_of(url: str) -> Any:
    """An Optuna RDB storage for ``url`` (any SQLAlchemy URL, e.g. ``postgresql://…``) with a
    heartbeat (:func:`heartbeat`) that fails a dead worker's trial and queues it again (up to
    :data:`MAX_RETRY` times). SQLite gets a lock timeout so that several processes can share
    one file, and its directory is created. A URL that cannot be opened is a one-line
    ConfigError naming it (password hidden)."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    if not url or "://" not in url:
        raise ConfigError(
            f"storage must be an RDB URL such as {DEFAULT_STORAGE}, but got storage={url!r}"
        )
    interval, grace = heartbeat()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    _check_reachable(url, kwargs)
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=kwargs,
                    heartbeat_interval=interval,
                    grace_period=grace,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRY
                    ),
                )
        except (IntegrityError, OperationalError):
            # two processes creating a new database's schema at once: one wins the insert of
            # the schema version and the other fails; the retry finds the schema in place
            if attempt == _SCHEMA_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _check_reachable(url: str, engine_kwargs: dict[str, Any]) -> None:
    """Connect once to ``url``; a bad or unreachable URL becomes a one-line ConfigError."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, **engine_kwargs)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as exc:  # any driver's error: the message says which URL and why
        reason = " ".join(redact(str(getattr(exc, "orig", None) or exc), url).split())
        raise ConfigError(
            f"storage must be a reachable RDB URL, but got storage={redact(url)!r} ({reason})"
        ) from None


def sampler_of(objective: str, seed: int = 0, worker: int = 0) -> Any:
    """The sampler of one worker: NSGA-II (``multi``) or TPE with ``constant_liar`` (running
    trials of other workers count as bad, so workers spread out), seeded with
    :func:`sampler_seed` of (seed, worker)."""
    import optuna

    s = sampler_seed(seed, worker)
    if objective == "multi":
        return optuna.samplers.NSGAIISampler(seed=s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=s, constant_liar=True)


def open_study(
    storage: Any,
    name: str,
    objective: str,
    *,
    seed: int = 0,
    worker: int = 0,
    warmup: int = 1,
) -> Any:
    """Create study ``name`` or load it if another process already has (same settings).

    ``multi``: maximise success rate, minimise perturbation, NSGA-II. ``weighted``: maximise
    one score, TPE and a median pruner over the DGN epochs. The sampler is this worker's
    (:func:`sampler_of`). Two processes creating the study at once both end up with it.
    """
    import optuna

    if objective not in OBJECTIVES:
        raise ConfigError(
            f"objective must be one of {', '.join(OBJECTIVES)}, but got {objective=}"
        )
    sampler = sampler_of(objective, seed, worker)
    if isinstance(storage, str):
        storage = storage_of(storage)
    if objective == "multi":
        kwargs: dict[str, Any] = {"directions": ["maximize", "minimize"]}
    else:
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


DEFAULT_ATTR = "robust.default"
"""User attribute (True) of the study's trial of the default weights: those ``attack -P
method=dgn`` uses without ``tuned_run``, queued as the study's first trial so that they are
always scored and the pick can be compared with them."""
DUPLICATE_ATTR = "robust.duplicate"
"""User attribute (True) of a second queued default trial (two workers queued the defaults at
once): pruned untrained and counted nowhere."""
SCHEDULE_ATTR = "robust.schedule"
"""Study user attribute: the DGN schedule every trial of the study is scored under."""


def check_schedule(study: Any, schedule: Mapping[str, Any]) -> None:
    """Record ``schedule`` (the DGN settings every trial trains with: loss, epochs, lr, batch
    size, ε, seed, …) on a study that has none; refuse a study scored under another one, whose
    scores would not compare with this run's.

    Raises:
        ConfigError: the study holds another schedule.
    """
    wanted = json.loads(json.dumps(dict(schedule), sort_keys=True))
    held = study.user_attrs.get(SCHEDULE_ATTR)
    if held is None:
        study.set_user_attr(SCHEDULE_ATTR, wanted)
    elif held != wanted:
        diff = ", ".join(
            f"{k}={held.get(k)!r} (now {wanted.get(k)!r})"
            for k in sorted(set(held) | set(wanted))
            if held.get(k) != wanted.get(k)
        )
        raise ConfigError(
            f"study {study.study_name!r} scores its trials under another DGN schedule: {diff}; "
            "pass the same settings or another study name"
        )


def schedule_of(study: Any) -> dict[str, Any] | None:
    """The schedule the study's trials are scored under (None for a study without one)."""
    return study.user_attrs.get(SCHEDULE_ATTR)


def enqueue_default(study: Any, params: Mapping[str, Any]) -> bool:
    """Queue ``params`` (the default weights, :func:`robust.tuning.defaults`) as the study's
    next trial, tagged :data:`DEFAULT_ATTR`, unless the study already has a default trial;
    True if queued. Two workers queueing at once make two: the later is a duplicate
    (:func:`is_duplicate_default`)."""
    trials = study.get_trials(deepcopy=False)
    if any(t.user_attrs.get(DEFAULT_ATTR) for t in trials):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna warns when a default lies outside its range
        study.enqueue_trial(dict(params), user_attrs={DEFAULT_ATTR: True})
    return True


def is_duplicate_default(trials: list[Any], number: int) -> bool:
    """Whether trial ``number`` is a default trial queued again by a race: a default trial
    with a smaller number exists that neither failed nor is a duplicate itself. A retry of a
    failed default trial is not a duplicate."""
    import optuna

    (me,) = [t for t in trials if t.number == number]
    if not me.user_attrs.get(DEFAULT_ATTR):
        return False
    return any(
        t.number < number
        and t.user_attrs.get(DEFAULT_ATTR)
        and not t.user_attrs.get(DUPLICATE_ATTR)
        and t.state != optuna.trial.TrialState.FAIL
        for t in trials
    )


def default_trial(study: Any) -> Any:
    """The study's COMPLETE trial of the default weights (None if it has none yet)."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    defaults = [t for t in done if t.user_attrs.get(DEFAULT_ATTR)]
    return min(defaults, key=lambda t: t.number) if defaults else None


def pick(study: Any) -> Any:
    """The trial whose weights are used, never worse than the default weights' trial
    (:data:`DEFAULT_ATTR`) on the tuning objective. None when no trial completed.

    * weighted: the best trial; the default trial when no trial scores higher (ties included);
    * multi: among the Pareto-front trials whose success rate is at least the default's (the
      primary objective), the highest success rate among those whose perturbation is at most
      their median (ties: smaller perturbation, then the earlier trial). The front always has
      one: the default is on it or is dominated by a front trial with a success rate at least
      as high. So the pick is never dominated by the default and never has a lower success
      rate; it may have a larger perturbation.

    Without a default trial (a study filled elsewhere) the rules are the same over all trials.
    """
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    default = default_trial(study)
    if len(study.directions) == 1:
        best = max(done, key=lambda t: (t.value, -t.number))
        return default if default is not None and default.value >= best.value else best
    best = study.best_trials
    if default is not None:
        best = [t for t in best if t.values[0] >= default.values[0]] or [default]
    median = statistics.median(t.values[1] for t in best)
    near = [t for t in best if t.values[1] <= median]
    return max(near, key=lambda t: (t.values[0], -t.values[1], -t.number))


def front(study: Any) -> list[dict[str, Any]]:
    """Rows (trial number, objective values, whether it is the default trial, params) of the
    Pareto front (multi) or of the picked trial (weighted)."""
    multi = len(study.directions) > 1
    trials = study.best_trials if multi else [pick(study)]
    names = ["success_rate", "l2_mean"] if multi else ["score"]
    return [
        {"trial": t.number}
        | dict(zip(names, t.values, strict=True))
        | {"default": bool(t.user_attrs.get(DEFAULT_ATTR))}
        | t.params
        for t in sorted(trials, key=lambda t: t.number)
    ]
