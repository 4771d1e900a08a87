"""A process's trials (robust/tuning/_optimize.py): each trial's log is opened through the
given factory with its params, receives one batch of metrics per scored step and is closed with
the trial's state; no MLflow is involved. The first trial is the default weights, never pruned.
With total_trials a worker waits for other workers' running trials, and retries a dead
worker's trial."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import optuna
import pytest

from robust import tuning

SETTINGS = {
    "eps": 0.3,
    "dgn_epochs": 2,
    "dgn_lr": 1e-3,
    "dgn_batch_size": 64,
    "seed": 0,
    "perturbation_weight": 1.0,
    "prune_every": 1,
    "study": "s",
}


class Recorder:
    """A TrialLog factory keeping every call."""

    def __init__(self):
        self.opened, self.logs = [], []

    def __call__(self, parent_run_id, number, study, params):
        self.opened.append((parent_run_id, number, study, dict(params)))
        log = SimpleNamespace(run_id=f"run-{number}", steps=[], ended=None)
        log.metrics = lambda metrics, step: log.steps.append((dict(metrics), step))
        log.end = lambda state, metrics=None, step=0: setattr(
            log, "ended", (state, dict(metrics or {}), step)
        )
        self.logs.append(log)
        return log


@pytest.mark.parametrize("objective", ["multi", "weighted"])
def test_each_trial_logs_params_one_batch_per_step_and_its_state(
    digits, trained, tmp_path, objective
):
    study = tuning.open_study(f"sqlite:///{tmp_path}/o.db", "s", objective, warmup=1)
    record = Recorder()
    tuning.optimize(
        SimpleNamespace(run_id="parent"), study, trained, digits, "nce", objective,
        n_trials=2, total_trials=None, settings=SETTINGS, trial_log=record,
    )  # fmt: skip
    assert [o[:3] for o in record.opened] == [("parent", 0, "s"), ("parent", 1, "s")]
    keys = {"val/success_rate", "val/l2_mean"} | (
        {"objective"} if objective == "weighted" else set()
    )
    for (_, number, _, params), log, trial in zip(
        record.opened, record.logs, study.trials, strict=True
    ):
        default = {"default": True} if number == 0 else {}  # the first trial: the defaults
        assert params == trial.params | {"trial": number} | default
        assert trial.user_attrs["mlflow_run_id"] == f"run-{number}"
        state, last, step = log.ended
        assert state == trial.state.name and step == SETTINGS["dgn_epochs"]
        if objective == "weighted":  # scored once mid-training (epoch 1 of 2), in one batch
            assert [(set(m), s) for m, s in log.steps] == [(keys, 1)]
        else:
            assert log.steps == []
        if state == "COMPLETE":
            assert set(last) == keys
            assert last["val/success_rate"] == trial.user_attrs["success_rate"]


def test_optimize_logs_nothing_by_default(digits, trained, tmp_path):
    study = tuning.open_study(f"sqlite:///{tmp_path}/o.db", "s", "multi")
    tuning.optimize(
        SimpleNamespace(run_id="parent"), study, trained, digits, "nce", "multi",
        n_trials=1, total_trials=None, settings=SETTINGS | {"dgn_epochs": 1},
    )  # fmt: skip
    (trial,) = study.trials
    assert trial.state.name == "COMPLETE" and "mlflow_run_id" not in trial.user_attrs


def _other_workers_trial(url: str):
    """A trial another worker is running: its params drawn, its heartbeat recorded."""
    other = optuna.load_study(study_name="s", storage=tuning.storage_of(url))
    trial = other.ask()
    tuning.suggest(trial, tuning.search_space("nce", n_features=64))
    other._storage.record_heartbeat(trial._trial_id)
    return other, trial


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # the other worker's ask
def test_a_worker_waits_for_anothers_running_trial_then_stops_at_the_budget(
    digits, trained, tmp_path
):
    url = f"sqlite:///{tmp_path}/o.db"
    study = tuning.open_study(url, "s", "multi")
    other, running = _other_workers_trial(url)
    threading.Timer(2.0, lambda: other.tell(running, [0.5, 1.0])).start()
    tuning.optimize(
        SimpleNamespace(run_id="parent"), study, trained, digits, "nce", "multi",
        n_trials=5, total_trials=2, settings=SETTINGS | {"dgn_epochs": 1}, poll_s=0.2,
    )  # fmt: skip
    states = [t.state.name for t in study.get_trials()]
    assert states == ["COMPLETE", "COMPLETE"]  # its own 1 trial + the other's: exactly 2


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # the other worker's ask
def test_a_dead_workers_trial_is_failed_and_retried_with_its_params(
    digits, trained, tmp_path, monkeypatch
):
    monkeypatch.setenv(tuning.HEARTBEAT_ENV, "1")
    monkeypatch.setenv(tuning.GRACE_ENV, "1")
    url = f"sqlite:///{tmp_path}/o.db"
    study = tuning.open_study(url, "s", "multi", worker=1)
    _, dead = _other_workers_trial(url)  # never told, never beats again
    record = Recorder()
    tuning.optimize(
        SimpleNamespace(run_id="parent"), study, trained, digits, "nce", "multi",
        n_trials=5, total_trials=2, settings=SETTINGS | {"dgn_epochs": 1, "worker": 1},
        trial_log=record, poll_s=0.2,
    )  # fmt: skip
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.params == trials[0].params and retry.user_attrs["robust.worker"] == 1
    retried = [o for o in record.opened if o[1] == retry.number]
    assert retried[0][3]["retry_of"] == dead.number


@pytest.mark.parametrize("loss", ["nce", "lrp", "susp"])
def test_the_first_trial_is_the_default_weights(digits, trained, tmp_path, loss):
    study = tuning.open_study(f"sqlite:///{tmp_path}/o.db", "s", "multi")
    tuning.optimize(
        SimpleNamespace(run_id="parent"), study, trained, digits, loss, "multi",
        n_trials=1, total_trials=None, settings=SETTINGS | {"dgn_epochs": 1},
    )  # fmt: skip
    (trial,) = study.trials
    space = tuning.search_space(loss, n_features=64)
    assert trial.user_attrs[tuning.DEFAULT_ATTR] is True and trial.state.name == "COMPLETE"
    assert trial.params == tuning.defaults(loss, space, input_shape=(1, 8, 8), lr=1e-3)
    assert tuning.default_trial(study).number == 0
    assert tuning.schedule_of(study) == {
        "loss": loss, "eps": 0.3, "dgn_epochs": 1, "dgn_lr": 1e-3, "dgn_batch_size": 64,
        "seed": 0,
    }  # fmt: skip


def test_a_study_refuses_another_schedule(digits, trained, tmp_path):
    from robust.errors import ConfigError

    study = tuning.open_study(f"sqlite:///{tmp_path}/o.db", "s", "multi")
    run = SimpleNamespace(run_id="parent")
    tuning.optimize(run, study, trained, digits, "nce", "multi", n_trials=1, total_trials=None,
                    settings=SETTINGS | {"dgn_epochs": 1})  # fmt: skip
    with pytest.raises(ConfigError, match=r"another DGN schedule: dgn_epochs=1 \(now 2\)"):
        tuning.optimize(run, study, trained, digits, "nce", "multi", n_trials=1,
                        total_trials=None, settings=SETTINGS)  # fmt: skip


def test_the_default_trial_is_never_pruned(digits, trained, tmp_path, monkeypatch):
    """A pruner that prunes everything prunes every trial but the defaults."""
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
    study = tuning.open_study(f"sqlite:///{tmp_path}/o.db", "s", "weighted", warmup=1)
    tuning.optimize(
        SimpleNamespace(run_id="parent"), study, trained, digits, "nce", "weighted",
        n_trials=3, total_trials=None, settings=SETTINGS,
    )  # fmt: skip
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED", "PRUNED"]
    assert tuning.pick(study).number == 0


def test_a_raced_second_default_trial_is_pruned_untrained_and_not_counted(
    digits, trained, tmp_path
):
    study = tuning.open_study(f"sqlite:///{tmp_path}/o.db", "s", "multi")
    space = tuning.search_space("nce", n_features=64)
    params = tuning.defaults("nce", space, input_shape=(1, 8, 8), lr=1e-3)
    for _ in range(2):  # two workers queued the defaults at once
        study.enqueue_trial(params, user_attrs={tuning.DEFAULT_ATTR: True})
    record = Recorder()
    tuning.optimize(
        SimpleNamespace(run_id="parent"), study, trained, digits, "nce", "multi",
        n_trials=2, total_trials=None, settings=SETTINGS | {"dgn_epochs": 1}, trial_log=record,
    )  # fmt: skip
    states = [(t.state.name, bool(t.user_attrs.get(tuning.DUPLICATE_ATTR))) for t in study.trials]
    assert states == [("COMPLETE", False), ("PRUNED", True), ("COMPLETE", False)]
    assert [o[1] for o in record.opened] == [0, 2]  # the duplicate opened no log
