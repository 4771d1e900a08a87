"""The shared study (robust/tuning/_study.py): per-worker sampler seeds, the heartbeat settings,
storages that cannot be opened, and a study created by two processes at once."""

from __future__ import annotations

import threading

import optuna
import pytest

from robust import tuning
from robust.errors import ConfigError
from tests.services import free_port


def test_sampler_seeds_differ_for_every_worker_and_repeat():
    seeds = [tuning.sampler_seed(0, w) for w in range(10_000)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**32 for s in seeds)
    assert tuning.sampler_seed(7, 3) == tuning.sampler_seed(7, 3) != tuning.sampler_seed(8, 3)


def test_sampler_seed_limits():
    assert tuning.sampler_seed(0, 2**32 - 1) >= 0
    with pytest.raises(ConfigError, match=r"worker must be between 0 and 4294967295, but got "):
        tuning.sampler_seed(0, 2**32)
    with pytest.raises(ConfigError, match=r"worker must be between 0 and .*worker=-1"):
        tuning.sampler_seed(0, -1)
    with pytest.raises(ConfigError, match=r"seed must be at least 0, but got seed=-1"):
        tuning.sampler_seed(-1, 0)


def test_auto_worker_comes_from_the_run_id():
    assert tuning.worker_of(3, "ignored") == 3
    a = tuning.worker_of(None, "8adcde25e9b844f1b04e1028a6ec63f3")
    assert a == 0xA6EC63F3 and a != tuning.worker_of(None, "6fa579939444444e82a79a2c4ba09db2")
    with pytest.raises(ConfigError, match="run_id must be a hexadecimal run id, but got"):
        tuning.worker_of(None, "not-hex")


@pytest.mark.parametrize("objective", ["multi", "weighted"])
def test_first_trials_differ_per_worker(objective):
    """NSGA-II's first generation and TPE's startup trials are drawn from the worker's seed."""
    space = tuning.search_space("nce", n_features=64)

    def first(worker: int) -> list[dict]:
        sampler = tuning.sampler_of(objective, seed=0, worker=worker)
        n = 2 if objective == "multi" else 1
        study = optuna.create_study(sampler=sampler, directions=["maximize"] * n)
        out = []
        for _ in range(4):
            trial = study.ask()
            out.append(tuning.suggest(trial, space))
            study.tell(trial, [0.5] * n)
        return out

    assert first(0) == first(0)
    assert not set(map(str, first(0))) & set(map(str, first(1)))


def test_tpe_lies_about_running_trials():
    assert tuning.sampler_of("weighted")._constant_liar is True
    assert isinstance(tuning.sampler_of("multi"), optuna.samplers.NSGAIISampler)


def test_heartbeat_defaults_and_environment(monkeypatch):
    monkeypatch.delenv(tuning.HEARTBEAT_ENV, raising=False)
    monkeypatch.delenv(tuning.GRACE_ENV, raising=False)
    assert tuning.heartbeat() == (60, 180)
    monkeypatch.setenv(tuning.HEARTBEAT_ENV, "2")
    assert tuning.heartbeat() == (2, 6)  # grace: 3 × interval unless given
    monkeypatch.setenv(tuning.GRACE_ENV, "1")
    assert tuning.heartbeat() == (2, 1)


@pytest.mark.parametrize("raw", ["0", "-1", "1.5", "soon"])
def test_heartbeat_must_be_whole_seconds(monkeypatch, raw):
    monkeypatch.setenv(tuning.HEARTBEAT_ENV, raw)
    with pytest.raises(ConfigError, match=rf"ROBUST_TUNE_HEARTBEAT_S must be .* got .*{raw!r}"):
        tuning.heartbeat()


def test_postgres_storage_has_the_heartbeat_and_retries(optuna_storage, monkeypatch):
    monkeypatch.setenv(tuning.HEARTBEAT_ENV, "5")
    monkeypatch.delenv(tuning.GRACE_ENV, raising=False)
    storage = tuning.storage_of(optuna_storage)
    assert storage.get_heartbeat_interval() == 5 and storage.grace_period == 15
    callback = storage.get_heartbeat_stale_trial_callback()
    assert isinstance(callback, optuna.storages.RetryHeartbeatStaleTrialCallback)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("nosuchdb://x/y", id="unknown-dialect"),
        pytest.param(f"postgresql://postgres@127.0.0.1:{free_port()}/optuna", id="unreachable"),
    ],
)
def test_a_storage_that_cannot_be_opened_is_a_one_line_config_error(url):
    with pytest.raises(ConfigError) as info:
        tuning.storage_of(url)
    message = str(info.value)
    assert message.startswith(f"storage must be a reachable RDB URL, but got storage={url!r} (")
    assert "\n" not in message


def test_the_password_is_not_shown(postgres):
    url = (
        postgres.url("optuna")
        .replace("postgres@", "postgres:secret@")
        .replace(f":{postgres.port}", f":{free_port()}")
    )
    with pytest.raises(ConfigError, match=r"storage='postgresql://postgres:\*\*\*@") as info:
        tuning.storage_of(url)
    assert "secret" not in str(info.value)


def test_two_processes_creating_the_study_at_once_share_it(optuna_storage):
    studies, errors = [], []

    def create() -> None:
        try:
            studies.append(tuning.open_study(optuna_storage, "s", "multi"))
        except Exception as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len({s._study_id for s in studies}) == 1 and len(studies) == 4
    assert optuna.study.get_all_study_names(optuna_storage) == ["s"]


def test_study_with_the_other_objective_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/o.db"
    tuning.open_study(url, "s", "multi")
    with pytest.raises(ConfigError, match="study 's' exists with 2 objective"):
        tuning.open_study(url, "s", "weighted")


def _trial(values, *, default=False, state=optuna.trial.TrialState.COMPLETE, **attrs):
    user_attrs = {tuning.DEFAULT_ATTR: True} if default else {}
    if len(values) == 1 and state == optuna.trial.TrialState.COMPLETE:
        user_attrs |= {"success_rate": values[0], "l2_mean": 0.0}
    return optuna.trial.create_trial(
        values=list(values) if state == optuna.trial.TrialState.COMPLETE else None,
        state=state, user_attrs=user_attrs | attrs,
    )  # fmt: skip


def test_weighted_pick_is_the_default_unless_a_trial_scores_higher():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial([0.5], default=True))
    assert tuning.pick(study).number == 0
    study.add_trial(_trial([0.5]))  # a tie: the default stays the pick
    study.add_trial(_trial([0.4]))
    assert tuning.pick(study).number == 0 == tuning.default_trial(study).number
    study.add_trial(_trial([0.6]))
    assert tuning.pick(study).number == 3
    assert [r["trial"] for r in tuning.front(study)] == [3]


def test_multi_pick_never_has_a_lower_success_rate_than_the_default():
    study = optuna.create_study(directions=["maximize", "minimize"])
    # the default has the front's highest success rate: the median rule alone would pick
    # trial 2 (0.6 < 0.9); no front trial reaches 0.9 but the default itself
    for values, default in [((0.9, 4.0), True), ((0.5, 1.0), False), ((0.6, 2.0), False)]:
        study.add_trial(_trial(values, default=default))
    assert tuning.pick(study).number == 0
    rows = tuning.front(study)
    assert [(r["trial"], r["default"]) for r in rows] == [(0, True), (1, False), (2, False)]
    # a trial dominating the default is picked over it
    study.add_trial(_trial((0.95, 3.0)))
    assert tuning.pick(study).number == 3


def test_a_dominated_default_leaves_the_front_trials_at_least_as_successful():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for values, default in [((0.5, 2.0), True), ((0.6, 1.5), False), ((0.3, 0.5), False),
                            ((0.8, 3.0), False)]:  # fmt: skip
        study.add_trial(_trial(values, default=default))
    pick = tuning.pick(study)  # among trials 1 and 3 (success ≥ 0.5); median 2.25: trial 1
    assert pick.number == 1 and pick.values[0] >= 0.5


def test_the_default_is_queued_once_and_a_raced_second_one_is_a_duplicate():
    study = optuna.create_study(directions=["maximize", "minimize"])
    assert tuning.enqueue_default(study, {"alpha": 1.0, "beta": 1.0}) is True
    assert tuning.enqueue_default(study, {"alpha": 1.0, "beta": 1.0}) is False
    (first,) = study.get_trials()
    assert first.state.name == "WAITING" and first.user_attrs[tuning.DEFAULT_ATTR] is True
    assert first.system_attrs["fixed_params"] == {"alpha": 1.0, "beta": 1.0}
    # two workers that queued at once: the later one is a duplicate, the earlier is not
    study.add_trial(_trial((0.1, 1.0), default=True, state=optuna.trial.TrialState.WAITING))
    trials = study.get_trials()
    assert not tuning.is_duplicate_default(trials, 0)
    assert tuning.is_duplicate_default(trials, 1)
    # a retry of a failed default trial is not a duplicate
    study.add_trial(_trial((0.1, 1.0), default=True, state=optuna.trial.TrialState.FAIL))
    study.add_trial(_trial((0.1, 1.0), default=True, state=optuna.trial.TrialState.WAITING))
    trials = study.get_trials()
    assert tuning.is_duplicate_default(trials, 3)  # trial 0 is still waiting


def test_a_study_keeps_the_schedule_of_its_first_trials(tmp_path):
    study = tuning.open_study(f"sqlite:///{tmp_path}/o.db", "s", "multi")
    schedule = {"loss": "nce", "dgn_epochs": 100, "dgn_lr": 1e-3, "seed": 0}
    tuning.check_schedule(study, schedule)
    tuning.check_schedule(study, dict(schedule))  # the same: fine
    assert tuning.schedule_of(study) == schedule
    with pytest.raises(
        ConfigError,
        match=r"study 's' scores its trials under another DGN schedule: dgn_epochs=100 "
        r"\(now 20\); pass the same settings or another study name",
    ):
        tuning.check_schedule(study, schedule | {"dgn_epochs": 20})


@pytest.mark.parametrize("loss", ["nce", "lrp", "susp"])
def test_defaults_are_the_attacks_weights(loss):
    from robust.attacks import dgn

    space = tuning.search_space(loss, n_features=64, tune_lr=True)
    values = tuning.defaults(loss, space, input_shape=(1, 8, 8), lr=1e-3)
    assert set(values) == set(space)
    weights = dgn.LOSSES[loss].weights
    assert all(values[k] == weights[k] for k in values if k not in ("k", "dgn_lr"))
    assert values["dgn_lr"] == 1e-3
    if loss == "lrp":
        from robust.explain import default_k

        assert values["k"] == default_k((1, 8, 8))
