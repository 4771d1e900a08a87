"""Search spaces and the study helpers (robust/tuning/_space.py, _study.py)."""

from __future__ import annotations

import optuna
import pytest

from robust import tuning
from robust.errors import ConfigError


@pytest.mark.parametrize(
    ("loss", "names"),
    [("nce", {"alpha", "beta"}), ("lrp", {"alpha", "k"}), ("susp", {"alpha", "lam", "gamma"})],
)
def test_each_loss_searches_its_own_weights(loss, names):
    assert set(tuning.search_space(loss, n_features=64)) == names
    assert set(tuning.search_space(loss, n_features=64, tune_lr=True)) == names | {"dgn_lr"}


def test_suggested_values_stay_in_range():
    space = tuning.search_space("lrp", n_features=64, tune_lr=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = tuning.suggest(study.ask(), space)
        assert all(space[k].contains(v) for k, v in values.items())
        assert isinstance(values["k"], int) and 1 <= values["k"] <= 16


def test_unknown_loss_and_objective_raise_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="loss must be one of nce, lrp, susp to be tuned"):
        tuning.search_space("brighten", n_features=64)
    with pytest.raises(ConfigError, match="objective must be one of multi, weighted"):
        tuning.open_study(f"sqlite:///{tmp_path}/o.db", "s", "single")
    with pytest.raises(ConfigError, match="storage must be an RDB URL"):
        tuning.storage_of("o.db")


def test_study_is_created_once_and_checked_against_its_objective(tmp_path):
    url = f"sqlite:///{tmp_path}/sub/o.db"  # the directory is created
    first = tuning.open_study(url, "s", "multi")
    again = tuning.open_study(url, "s", "multi")
    assert first._study_id == again._study_id
    with pytest.raises(ConfigError, match="exists with 2 objective"):
        tuning.open_study(url, "s", "weighted")


def test_pick_takes_max_success_among_front_at_or_below_median_perturbation(tmp_path):
    study = tuning.open_study(f"sqlite:///{tmp_path}/o.db", "s", "multi")
    for values in [(0.9, 3.0), (0.7, 2.0), (0.5, 1.0), (0.4, 2.5)]:  # the last is dominated
        study.add_trial(optuna.trial.create_trial(values=list(values)))
    assert [r["trial"] for r in tuning.front(study)] == [0, 1, 2]
    assert tuning.pick(study).values == [0.7, 2.0]  # median of 3, 2, 1 is 2
