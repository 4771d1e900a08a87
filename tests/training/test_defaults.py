"""Tests of robust/training/defaults.py."""

import pytest

from robust.errors import ConfigError
from robust.training import TrainConfig, defaults_for


@pytest.mark.parametrize(
    "dataset, expected",
    [
        pytest.param("gtsrb", TrainConfig("rmsprop", 1e-3, 10, 64), id="gtsrb"),
        pytest.param("intel", TrainConfig("rmsprop", 1e-3, 20, 128), id="intel"),
        pytest.param("cifar10", TrainConfig("rmsprop", 1e-3, 20, 64), id="cifar10"),
        pytest.param("mnist", TrainConfig("rmsprop", 1e-3, 10, 64), id="mnist"),
        pytest.param("fashion", TrainConfig("adam", 1e-3, 10, 64), id="fashion"),
        pytest.param("digits", TrainConfig("adam", 1e-3, 30, 32), id="digits"),
    ],
)
def test_seed_defaults(dataset, expected) -> None:
    assert defaults_for(dataset) == expected


def test_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match=r"dataset must be one of digits, .*dataset='svhn'"):
        defaults_for("svhn")


def test_config_is_frozen() -> None:
    config = defaults_for("mnist")
    with pytest.raises(AttributeError):
        config.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"optimizer": "lbfgs"}, r"optimizer must be one of .*'lbfgs'", id="opt"),
        pytest.param({"lr": 0}, r"lr must be a finite number greater than 0, .*lr=0", id="lr"),
        pytest.param({"lr": float("nan")}, r"lr must be a finite .*lr=nan", id="lr-nan"),
        pytest.param({"epochs": 0}, r"epochs must be .*at least 1, but got epochs=0", id="ep"),
        pytest.param({"epochs": True}, r"epochs must be an integer .*epochs=True", id="ep-bool"),
        pytest.param({"batch_size": 0}, r"batch_size must .*batch_size=0", id="batch"),
    ],
)
def test_config_checks_itself(kwargs, message) -> None:
    args = {"optimizer": "adam", "lr": 1e-3, "epochs": 1, "batch_size": 1}
    assert TrainConfig(**args).epochs == 1
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{**args, **kwargs})
