"""The evaluate stage end to end on digits (pipelines/evaluate.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from pipelines import _cli, attack, evaluate, train
from robust import attacks, data, models, results, tracking
from robust.errors import ConfigError
from robust.models import predict
from tests.conftest import isolated_store

EPS = 0.3  # digits' default budget


@dataclass(frozen=True)
class Runs:
    other: str  # an older train run on another split (seed 1): stands in for a second model
    original: str  # the newest train run
    fgsm: str  # attack runs on the original's test split
    pgd: str
    train_only: str  # an attack of the train split only: no test column
    hardened: str  # a static advtrain run of the original on `fgsm` (made up here)


def _advtrain(original: str, attack_run: str, **params) -> str:
    """A minimal advtrain run: stage tag, model and attack upstreams, params, ``model/``."""
    model = results.load_model(original)
    with torch.no_grad():
        for t in model.parameters():
            t.add_(0.05 * torch.randn_like(t))
    params = {"dataset": "digits", "model_run": original, "attack_run": attack_run} | params
    upstream = {"model": original, "attack": attack_run}
    with tracking.stage("advtrain", params, dataset="digits", upstream=upstream) as run:
        classes = data.load("digits").classes
        directory = models.save(model, run.outdir / "m", dataset="digits", classes=classes)
        run.log_artifacts(directory, "model")
        return run.run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    with isolated_store(root):
        other = train.main(train.Params(epochs=2, seed=1, quiet=True))
        original = train.main(train.Params(epochs=3, quiet=True))
        test = ("test",)
        fgsm = attack.main(attack.Params(method="fgsm", splits=test, quiet=True))
        yield Runs(
            other=other,
            original=original,
            fgsm=fgsm,
            pgd=attack.main(attack.Params(method="pgd", steps=3, splits=test, quiet=True)),
            train_only=attack.main(
                attack.Params(method="fgsm", eps=0.1, splits=("train",), quiet=True)
            ),
            # static (seed 004): trained on the FGSM run's set; `method` is unused there
            hardened=_advtrain(original, fgsm, mode="static", method="pgd"),
        )


@pytest.fixture(scope="module")
def auto(runs) -> str:
    """The stage with every run found automatically (PGD shortened to 3 steps)."""
    return evaluate.main(evaluate.Params(steps=3, quiet=True))


def _matrix(run_id: str, name: str) -> pd.DataFrame:
    return pd.read_csv(tracking.Lineage().artifact(run_id, f"matrix/{name}.csv"), index_col=0)


def _labels(run_id: str) -> dict:
    return json.loads(tracking.Lineage().artifact(run_id, "matrix/labels.json").read_text())


def _accuracy(model, x, y) -> float:
    return int((predict(model, x).argmax(1) == y).sum()) / len(y)


def test_auto_finds_the_original_its_advtrain_runs_and_its_test_attacks(runs, auto):
    o, h = runs.original[:8], runs.hardened[:8]
    rows = [f"train-{o}", f"advtrain-fgsm-{h}"]
    columns = ["clean", f"fgsm-{runs.fgsm[:8]}", f"pgd-{runs.pgd[:8]}"]
    transfer, adaptive = _matrix(auto, "transfer"), _matrix(auto, "adaptive")
    assert list(transfer.index) == rows and list(transfer.columns) == columns
    assert list(adaptive.index) == rows and list(adaptive.columns) == ["clean", "fgsm", "pgd"]
    assert ((transfer >= 0) & (transfer <= 1)).all().all()
    pd.testing.assert_series_equal(transfer["clean"], adaptive["clean"])
    labels = _labels(auto)
    assert labels["original"] == runs.original
    assert {k: v["run_id"] for k, v in labels["rows"].items()} == dict(
        zip(rows, (runs.original, runs.hardened), strict=True)
    )
    assert labels["rows"][rows[1]]["stage"] == "advtrain"
    assert labels["columns"][columns[2]]["run_id"] == runs.pgd
    assert labels["columns"][columns[2]]["params"]["steps"] == "3"
    assert labels["columns"]["clean"] == {"run_id": runs.original, "split": "test", "n": 360}
    assert labels["adaptive"]["pgd"] == {
        "method": "pgd", "eps": EPS, "norm": "inf", "steps": 3, "step_size": 0.25, "restarts": 1,
        "seed": 0,
    }  # fmt: skip


def test_transfer_cell_of_the_original_equals_the_attack_stage_accuracy(runs, auto):
    m = MlflowClient().get_run(auto).data.metrics
    for run_id in (runs.fgsm, runs.pgd):
        theirs = MlflowClient().get_run(run_id).data.metrics["test/accuracy"]
        label = f"{'fgsm' if run_id == runs.fgsm else 'pgd'}-{run_id[:8]}"
        # the attack stage averages in float32: the same count of 360, to float32 rounding
        assert m[f"transfer/train-{runs.original[:8]}/{label}"] == pytest.approx(theirs, abs=1e-7)
    assert m[f"transfer/train-{runs.original[:8]}/fgsm-{runs.fgsm[:8]}"] < 0.2


def test_clean_column_equals_the_train_stage_test_accuracy(runs, auto):
    m = MlflowClient().get_run(auto).data.metrics
    theirs = MlflowClient().get_run(runs.original).data.metrics["test/accuracy"]
    assert m[f"transfer/train-{runs.original[:8]}/clean"] == theirs
    assert m[f"adaptive/train-{runs.original[:8]}/clean"] == theirs


def test_adaptive_cells_equal_the_attacks_run_directly(runs, auto):
    m = MlflowClient().get_run(auto).data.metrics
    test = tracking.Lineage().dataset_of(runs.original).test
    for run_id, row in ((runs.original, "train"), (runs.hardened, "advtrain-fgsm")):
        model = results.load_model(run_id)
        x_fgsm = attacks.fgsm(model, test.x, test.y, EPS)
        x_pgd = attacks.pgd(model, test.x, test.y, EPS, steps=3, seed=0)
        assert m[f"adaptive/{row}-{run_id[:8]}/fgsm"] == _accuracy(model, x_fgsm, test.y)
        assert m[f"adaptive/{row}-{run_id[:8]}/pgd"] == _accuracy(model, x_pgd, test.y)


def test_logs_a_metric_per_cell_artifacts_phases_and_lineage(runs, auto):
    r = MlflowClient().get_run(auto)
    m, tags = r.data.metrics, r.data.tags
    for name in ("transfer", "adaptive"):
        matrix = _matrix(auto, name)
        keys = {f"{name}/{row}/{col}" for row in matrix.index for col in matrix.columns}
        assert keys == {k for k in m if k.startswith(f"{name}/")}
        for (row, col), value in matrix.stack().items():
            assert m[f"{name}/{row}/{col}"] == pytest.approx(value, abs=1e-12)
        assert f"time/{name}_s" in m and f"energy/{name}_kwh" in m
    assert "time/load_s" in m
    arts = {a.path for a in MlflowClient().list_artifacts(auto, "matrix")}
    assert arts == {
        f"matrix/{f}"
        for f in ("transfer.csv", "transfer.png", "adaptive.csv", "adaptive.png", "labels.json")
    }
    assert tags["robust.stage"] == "evaluate" and tags["robust.upstream.model"] == runs.original
    assert tags[f"robust.upstream.model.advtrain-fgsm-{runs.hardened[:8]}"] == runs.hardened
    assert tags[f"robust.upstream.attack.fgsm-{runs.fgsm[:8]}"] == runs.fgsm
    assert r.data.params["model_runs"] == f"{runs.original},{runs.hardened}"
    assert r.data.params["attack_runs"] == f"{runs.fgsm},{runs.pgd}"
    assert r.data.params["eps"] == "0.3"


def test_a_second_model_run_is_a_row_and_adaptive_can_be_off(runs, auto, caplog):
    caplog.set_level("WARNING", logger="pipelines.evaluate")
    p = evaluate.Params(
        model_runs=(runs.original, runs.other), attack_runs=(runs.fgsm,), adaptive=False
    )
    run_id = evaluate.main(p)
    transfer = _matrix(run_id, "transfer")
    assert list(transfer.index) == [f"train-{runs.original[:8]}", f"train-{runs.other[:8]}"]
    assert list(transfer.columns) == ["clean", f"fgsm-{runs.fgsm[:8]}"]
    pd.testing.assert_frame_equal(transfer.iloc[:1], _matrix(auto, "transfer").iloc[:1, :2])
    test = tracking.Lineage().dataset_of(runs.original).test  # every row sees the original's split
    assert transfer.iloc[1, 0] == _accuracy(results.load_model(runs.other), test.x, test.y)
    assert f"model run {runs.other} was trained on the split of seed 1" in caplog.text
    m = MlflowClient().get_run(run_id).data.metrics
    assert not any(k.startswith("adaptive/") or k == "time/adaptive_s" for k in m)
    arts = {a.path for a in MlflowClient().list_artifacts(run_id, "matrix")}
    assert "matrix/adaptive.csv" not in arts and _labels(run_id)["adaptive"] == {}


def test_identical_evaluation_is_reused(runs, auto, caplog):
    caplog.set_level("INFO", logger="robust")
    p = evaluate.Params(
        model_runs=(runs.original, runs.hardened), attack_runs=(runs.fgsm, runs.pgd), steps=3
    )
    assert evaluate.main(p) == auto  # auto resolves to the same runs
    assert f"reusing FINISHED evaluate run {auto}" in caplog.text


@pytest.mark.parametrize(
    ("field", "message"),
    [
        pytest.param("unknown", "no run with id 'nope'", id="unknown"),
        pytest.param("attack_as_model", "is a 'attack' run, but a 'train' or 'advtrain'", id="am"),
        pytest.param(
            "train_as_attack", "is a 'train' run, but a 'attack' run is required", id="ta"
        ),
        pytest.param("dataset", "was trained on dataset 'digits', not 'mnist'", id="dataset"),
        pytest.param("no_test", "has no adversarial test set", id="no_test"),
        pytest.param(
            "none_found", "no FINISHED attack run on dataset 'digits' attacked", id="none"
        ),
    ],
)
def test_bad_runs_are_config_errors(runs, field, message):
    kwargs = {
        "unknown": {"model_runs": ("nope",)},
        "attack_as_model": {"model_runs": (runs.fgsm,)},
        "train_as_attack": {"attack_runs": (runs.original,)},
        "dataset": {"dataset": "mnist", "model_runs": (runs.original,)},
        "no_test": {"attack_runs": (runs.fgsm, runs.train_only)},
        "none_found": {"model_runs": (runs.other, runs.original)},  # the original is `other`
    }[field]
    with pytest.raises(ConfigError, match=message):
        evaluate.main(evaluate.Params(quiet=True, **kwargs))


def test_model_runs_must_share_the_inputs(runs, auto):
    params = {"dataset": "digits", "seed": 0, "size": 12}  # only its params are read
    with tracking.stage("train", params, dataset="digits") as run:
        resized = run.run_id
    p = evaluate.Params(model_runs=(runs.original, resized), attack_runs=(runs.fgsm,))
    with pytest.raises(ConfigError, match=f"but {resized} was trained with size=12 and"):
        evaluate.main(p)


def test_bad_run_fails_the_adopted_run_with_one_line(runs, capsys):
    run_id = MlflowClient().create_run("0").info.run_id  # as `mlflow run` makes one
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_RUN_ID", run_id)
        assert _cli.run(evaluate.main, evaluate.Params, ["--attack_runs", runs.original]) == 2
    message = f"run {runs.original} is a 'train' run, but a 'attack' run is required"
    assert capsys.readouterr().err == f"error: {message}\n"
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["robust.error"] == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--model_runs", ","], "model_runs must name at least one run", id="rows"),
        pytest.param(["--attack_runs", " "], "attack_runs must name at least one", id="cols"),
        pytest.param(["--steps", "0"], "steps must be at least 1", id="steps"),
        pytest.param(["--eps", "-0.1"], "eps must be a finite number of at least 0", id="eps"),
        pytest.param(["--step_size", "0"], "step_size must be greater than 0", id="step"),
        pytest.param(["--batch_size", "0"], "batch_size must be at least 1", id="batch"),
        pytest.param(["--device", "gpu"], "device must be one of auto, cpu, cuda", id="device"),
        pytest.param(["--adaptive", "maybe"], "adaptive must be true or false", id="adaptive"),
        pytest.param(["--dataset", "svhn"], "dataset must be one of digits", id="dataset"),
    ],
)
def test_bad_parameters(argv, message):
    with pytest.raises(ConfigError, match=message):
        _cli.parse(evaluate.Params, argv)


def test_limits_are_allowed():
    p = _cli.parse(evaluate.Params, ["--steps", "1", "--eps", "0", "--batch_size", "1"])
    assert (p.steps, p.eps, p.batch_size, p.model_runs) == (1, 0.0, 1, None)
    assert _cli.parse(evaluate.Params, ["--model_runs", "a, b"]).model_runs == ("a", "b")
