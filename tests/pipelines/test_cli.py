"""Parameter parsing and exit codes of pipelines/_cli.py."""

from __future__ import annotations

import pytest

from pipelines import _cli, train
from robust.errors import ConfigError


def test_types_defaults_and_auto():
    p = _cli.parse(
        train.Params,
        [
            "--epochs",
            "3",
            "--lr",
            "1e-2",
            "--grayscale",
            "true",
            "--size",
            "auto",
            "--model",
            "auto",
        ],
    )
    assert (p.epochs, p.lr, p.grayscale, p.size, p.model) == (3, 0.01, True, None, None)
    assert p.dataset == "digits" and p.seed == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--lr", "abc"], "lr must be a number, but got lr='abc'", id="lr-abc"),
        pytest.param(
            ["--epochs", "1.5"],
            "epochs must be an integer, but got epochs='1.5'",
            id="epochs-float",
        ),
        pytest.param(
            ["--epochs", "-1"],
            "epochs must be at least 1, but got epochs=-1",
            id="epochs-negative",
        ),
        pytest.param(
            ["--epochs", "0"], "epochs must be at least 1, but got epochs=0", id="epochs-0"
        ),
        pytest.param(["--lr", "0"], "lr must be greater than 0, but got lr=0.0", id="lr-0"),
        pytest.param(["--batch_size", "0"], "batch_size must be at least 1", id="batch-0"),
        pytest.param(
            ["--dataset", "nope"],
            "dataset must be one of digits, mnist, fashion, "
            "cifar10, gtsrb, intel, but got dataset='nope'",
            id="dataset",
        ),
        pytest.param(["--model", "resnet"], "model must be one of", id="model"),
        pytest.param(["--optimizer", "lbfgs"], "optimizer must be one of", id="optimizer"),
        pytest.param(["--device", "tpu"], "device must be one of auto, cpu, cuda", id="device"),
        pytest.param(["--grayscale", "maybe"], "grayscale must be true or false", id="bool"),
        pytest.param(
            ["--epoch", "3"],
            "unrecognized arguments: --epoch 3; the parameters are: dataset, seed, device",
            id="unknown",
        ),
    ],
)
def test_bad_parameters_raise_one_line(argv, message):
    with pytest.raises(
        ConfigError,
        match="^" + message.replace("(", r"\(").replace(".", r"\.").replace(")", r"\)"),
    ) as info:
        _cli.parse(train.Params, argv)
    assert "\n" not in str(info.value)


def test_limits_accept_their_boundary():
    p = _cli.parse(train.Params, ["--epochs", "1", "--batch_size", "1", "--lr", "1e-9"])
    assert (p.epochs, p.batch_size, p.lr) == (1, 1, 1e-9)


def test_field_docs_become_help(capsys):
    docs = _cli.field_docs(train.Params)
    assert docs["dataset"].startswith("Dataset name: digits (bundled)")
    assert set(docs) == {f for f in train.Params.__dataclass_fields__}
    with pytest.raises(SystemExit):
        _cli.parse(train.Params, ["--help"])
    assert "Recompute even if an identical FINISHED run exists" in capsys.readouterr().out


def test_run_returns_2_with_one_line(capsys):
    assert _cli.run(train.main, train.Params, ["--epochs", "-1"]) == 2
    err = capsys.readouterr().err
    assert err == "error: epochs must be at least 1, but got epochs=-1\n"
