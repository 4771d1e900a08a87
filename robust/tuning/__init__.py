"""Tuning the loss weights of the DGN generators with Optuna (issue 7): search spaces, the two
objectives (scored under the schedule the attack trains with), the default weights every
study scores first and the pick never worse than them, the study shared by several workers
(own sampler seeds, a heartbeat, one trial budget), and the interface each trial logs through
(:class:`TrialLog`, opened by a :data:`TrialLogFactory`; the MLflow one is
``robust.tracking.trials``). No MLflow here.

Example:
    >>> study = tuning.open_study("postgresql://host/optuna", "digits-nce-multi", "multi",
    ...                           seed=0, worker=1)
    >>> study.optimize(objective, n_trials=8)
"""

from robust.tuning._objective import Scores, checkpoints, scores, train_scored
from robust.tuning._optimize import base_settings, optimize, report, schedule
from robust.tuning._space import Range, defaults, search_space, suggest
from robust.tuning._study import (
    DEFAULT_ATTR,
    DEFAULT_STORAGE,
    DUPLICATE_ATTR,
    GRACE_ENV,
    HEARTBEAT_ENV,
    MAX_RETRY,
    OBJECTIVES,
    SCHEDULE_ATTR,
    check_schedule,
    default_trial,
    enqueue_default,
    front,
    heartbeat,
    is_duplicate_default,
    open_study,
    pick,
    sampler_of,
    sampler_seed,
    schedule_of,
    storage_of,
    worker_of,
)
from robust.tuning._trial_log import TRIAL_STATES, NoTrialLog, TrialLog, TrialLogFactory

__all__ = [
    "DEFAULT_ATTR",
    "DEFAULT_STORAGE",
    "DUPLICATE_ATTR",
    "GRACE_ENV",
    "HEARTBEAT_ENV",
    "MAX_RETRY",
    "OBJECTIVES",
    "SCHEDULE_ATTR",
    "TRIAL_STATES",
    "NoTrialLog",
    "Range",
    "Scores",
    "TrialLog",
    "TrialLogFactory",
    "base_settings",
    "check_schedule",
    "checkpoints",
    "default_trial",
    "defaults",
    "enqueue_default",
    "front",
    "heartbeat",
    "is_duplicate_default",
    "open_study",
    "optimize",
    "pick",
    "report",
    "sampler_of",
    "sampler_seed",
    "schedule",
    "schedule_of",
    "scores",
    "search_space",
    "storage_of",
    "suggest",
    "train_scored",
    "worker_of",
]
