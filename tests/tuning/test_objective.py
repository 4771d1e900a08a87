"""The tuning objectives (robust/tuning/_objective.py): a trial trains as the attack does, and
its early scores are those of the one uninterrupted training at that epoch."""

from __future__ import annotations

import pytest

from robust import tuning
from robust.attacks import dgn
from robust.errors import ConfigError

NCE = {"loss": "nce", "alpha": 1.0, "beta": 1.0, "eps": 0.3, "dgn_lr": 1e-3,
       "dgn_batch_size": 64}  # fmt: skip


def test_scores_are_rates_and_positive_norms_and_report_is_called_per_checkpoint(digits, trained):
    seen = []
    s = tuning.train_scored(
        trained, digits.train, digits.val, NCE | {"dgn_epochs": 3}, every=1,
        report=lambda epoch, sc: seen.append((epoch, sc)),
    )  # fmt: skip
    assert [e for e, _ in seen] == [1, 2]
    for sc in [s, *(sc for _, sc in seen)]:
        assert 0 <= sc.success_rate <= 1
        assert 0 < sc.l2_mean <= 0.3 * 8 + 1e-5  # L∞ ≤ ε over 64 pixels bounds L2 by 8ε


def test_early_scores_and_the_final_one_equal_one_uninterrupted_training(digits, trained):
    """Scoring after epochs 1 and 2 of 3 changes nothing: each early score is the one a
    training of that many epochs gets, and the final score is the one-go training's."""
    seen = {}
    chunked = tuning.train_scored(
        trained, digits.train, digits.val, NCE | {"dgn_epochs": 3}, seed=1, every=1,
        report=lambda epoch, sc: seen.setdefault(epoch, sc),
    )  # fmt: skip
    for epochs in (1, 2, 3):
        one_go = tuning.train_scored(
            trained, digits.train, digits.val, NCE | {"dgn_epochs": epochs}, seed=1
        )
        assert (chunked if epochs == 3 else seen[epochs]) == one_go


def test_a_trial_trains_the_generators_the_attack_trains(digits, trained):
    """train_scored's score is the score of dgn.train with the same options and seed."""
    settings = NCE | {"dgn_epochs": 2}
    gens = dgn.train(
        trained, digits.train.x, digits.train.y, **dgn.train_options(settings), seed=3,
        classes=range(digits.num_classes), progress=False,
    )  # fmt: skip
    expected = tuning.scores(trained, gens, digits.val.x, digits.val.y)
    got = tuning.train_scored(
        trained, digits.train, digits.val, settings, seed=3, classes=range(digits.num_classes)
    )
    assert got == expected


def test_checkpoints():
    assert tuning.checkpoints(10, None) == []
    assert tuning.checkpoints(10, 5) == [5]
    assert tuning.checkpoints(10, 3) == [3, 6, 9]
    assert tuning.checkpoints(2, 5) == []
    with pytest.raises(ConfigError, match="every must be at least 1, but got every=0"):
        tuning.checkpoints(10, 0)


def test_report_may_stop_training():
    class Stop(Exception):
        pass

    def stop(epoch, sc):
        raise Stop

    from robust import data, models

    ds = data.load("digits", seed=0)
    model = models.for_dataset(ds).eval()
    with pytest.raises(Stop):
        tuning.train_scored(model, ds.train, ds.val, NCE | {"dgn_epochs": 2}, every=1, report=stop)
