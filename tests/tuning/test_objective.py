"""The tuning objectives (robust/tuning/_objective.py)."""

from __future__ import annotations

import pytest

from robust import tuning


def test_scores_are_rates_and_positive_norms_and_report_is_called_per_chunk(digits, trained):
    seen = []
    s = tuning.train_scored(
        trained, digits.train, digits.val, "nce", {"alpha": 1.0, "beta": 1.0},
        eps=0.3, epochs=3, lr=1e-3, batch_size=64, every=1,
        report=lambda epoch, sc: seen.append((epoch, sc)),
    )  # fmt: skip
    assert [e for e, _ in seen] == [1, 2]
    for sc in [s, *(sc for _, sc in seen)]:
        assert 0 <= sc.success_rate <= 1
        assert 0 < sc.l2_mean <= 0.3 * 8 + 1e-5  # L∞ ≤ ε over 64 pixels bounds L2 by 8ε


def test_report_may_stop_training():
    class Stop(Exception):
        pass

    def stop(epoch, sc):
        raise Stop

    from robust import data, models

    ds = data.load("digits", seed=0)
    model = models.for_dataset(ds).eval()
    with pytest.raises(Stop):
        tuning.train_scored(
            model, ds.train, ds.val, "nce", {}, eps=0.3, epochs=2, lr=1e-3, batch_size=64,
            every=1, report=stop,
        )  # fmt: skip
