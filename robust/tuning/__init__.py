"""Tuning the loss weights of the DGN generators with Optuna (issue 7): search spaces, the two
objectives, the study shared by several workers (own sampler seeds, a heartbeat, one trial
budget), and the interface each trial logs through (:class:`TrialLog`, opened by a
:data:`TrialLogFactory`; the MLflow one is ``robust.tracking.trials``). No MLflow here.

Example:
    >>> study = tuning.open_study("postgresql://host/optuna", "digits-nce-multi", "multi",
    ...                           seed=0, worker=1)
    >>> study.optimize(objective, n_trials=8)
"""

from robust.tuning._objective import Scores, scores, train_scored
from robust.tuning._optimize import optimize, report
from robust.tuning._space import Range, search_space, suggest
from robust.tuning._study import (
    DEFAULT_STORAGE,
    GRACE_ENV,
    HEARTBEAT_ENV,
    MAX_RETRY,
    OBJECTIVES,
    front,
    heartbeat,
    open_study,
    pick,
    sampler_of,
    sampler_seed,
    storage_of,
    worker_of,
)
from robust.tuning._trial_log import TRIAL_STATES, NoTrialLog, TrialLog, TrialLogFactory

__all__ = [
    "DEFAULT_STORAGE",
    "GRACE_ENV",
    "HEARTBEAT_ENV",
    "MAX_RETRY",
    "OBJECTIVES",
    "TRIAL_STATES",
    "NoTrialLog",
    "Range",
    "Scores",
    "TrialLog",
    "TrialLogFactory",
    "front",
    "heartbeat",
    "open_study",
    "optimize",
    "pick",
    "report",
    "sampler_of",
    "sampler_seed",
    "scores",
    "search_space",
    "storage_of",
    "suggest",
    "train_scored",
    "worker_of",
]
