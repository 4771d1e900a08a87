"""Tuning the loss weights of the DGN generators with Optuna (issue 7): search spaces, the two
objectives, the shared study, and the interface each trial logs through (:class:`TrialLog`,
opened by a :data:`TrialLogFactory`; the MLflow one is ``robust.tracking.trials``). No MLflow
here.

Example:
    >>> study = tuning.open_study("sqlite:///mlruns/optuna.db", "digits-nce-multi", "multi")
    >>> study.optimize(objective, n_trials=8)
"""

from robust.tuning._objective import Scores, scores, train_scored
from robust.tuning._optimize import optimize, report
from robust.tuning._space import Range, search_space, suggest
from robust.tuning._study import (
    DEFAULT_STORAGE,
    OBJECTIVES,
    front,
    open_study,
    pick,
    storage_of,
)
from robust.tuning._trial_log import TRIAL_STATES, NoTrialLog, TrialLog, TrialLogFactory

__all__ = [
    "DEFAULT_STORAGE",
    "OBJECTIVES",
    "TRIAL_STATES",
    "NoTrialLog",
    "Range",
    "Scores",
    "TrialLog",
    "TrialLogFactory",
    "front",
    "open_study",
    "optimize",
    "pick",
    "report",
    "scores",
    "search_space",
    "storage_of",
    "suggest",
    "train_scored",
]
