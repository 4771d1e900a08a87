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
