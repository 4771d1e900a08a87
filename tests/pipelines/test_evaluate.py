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
from robust.evaluation import Adaptive, AdaptiveDGN, masking_checks, wilson
from robust.models import predict
from robust.tracking import labels
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
    dgn: str  # a DGN attack run (1 epoch) on the original's test split
    retrained: str  # a retrain run with best models for deepgini and random (made up here)


def _retrain(original: str, attack_run: str, **extra) -> str:
    """A minimal retrain run: stage tag, upstreams, ``best/<metric>/`` and ``best/best.json``."""
    classes = data.load("digits").classes
    params = {"dataset": "digits", "config": "c2", "metrics": "deepgini,random"} | extra
    upstream = {"model": original, "attack": attack_run}
    with tracking.stage(
        "retrain", params, dataset="digits", upstream=upstream, run_name="retrain c2"
    ) as run:
        for i, metric in enumerate(("deepgini", "random")):
            model = results.load_model(original)
            with torch.no_grad():
                for t in model.parameters():
                    t.add_(0.02 * (i + 1) * torch.randn_like(t))
            models.save(model, run.outdir / "best" / metric, dataset="digits", classes=classes)
        run.log_artifacts(run.outdir / "best", "best")
        run.log_dict({"deepgini": {"step": 1}, "random": {"step": 2}}, "best/best.json")
        return run.run_id


def _advtrain(original: str, attack_run: str, **params) -> str:
    """A minimal advtrain run: stage tag, model and attack upstreams, params, ``model/``; not
    named by robust (its label is read from its params, as for a run from before names)."""
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
            dgn=attack.main(attack.Params(method="dgn", dgn_epochs=1, splits=test, quiet=True)),
            retrained=_retrain(original, fgsm),
        )


ADAPTIVE = ("fgsm", "pgd", "autoattack")
SHORT = {"steps": 3, "apgd_steps": 3, "n_queries": 30, "dgn_epochs": 1, "masking_inputs": 40}
"""Short attacks, so the stage runs in seconds; the contract does not depend on their length."""


@pytest.fixture(scope="module")
def auto(runs) -> str:
    """The stage with every model and attack run found automatically, the retrain run's best
    models as rows, three adaptive attacks and an ε-curve at 0.1 and 0.3."""
    p = evaluate.Params(
        retrain_runs=(runs.retrained,), adaptive=ADAPTIVE, eps=(EPS, 0.1), quiet=True, **SHORT
    )
    return evaluate.main(p)


def _rows(runs) -> list[str]:
    """The row labels: the runs' names (the advtrain run's, unnamed, from its params)."""
    return ["train digits_cnn", "advtrain fgsm", "retrain c2 deepgini", "retrain c2 random"]


def _models(runs) -> dict[str, torch.nn.Module]:
    loaded = [results.load_model(runs.original), results.load_model(runs.hardened)]
    loaded += [results.load_model(runs.retrained, f"best/{m}") for m in ("deepgini", "random")]
    return dict(zip(_rows(runs), loaded, strict=True))


def _matrix(run_id: str, name: str) -> pd.DataFrame:
    return pd.read_csv(tracking.Lineage().artifact(run_id, f"matrix/{name}.csv"), index_col=0)


def _labels(run_id: str) -> dict:
    return json.loads(tracking.Lineage().artifact(run_id, "matrix/labels.json").read_text())


def _accuracy(model, x, y) -> float:
    return int((predict(model, x).argmax(1) == y).sum()) / len(y)


def test_auto_finds_the_rows_the_retrained_best_models_and_the_test_attacks(runs, auto):
    rows = _rows(runs)
    dgn = "dgn-nce"
    columns = ["clean", "fgsm ε=0.3", "pgd ε=0.3", dgn]
    transfer, adaptive = _matrix(auto, "transfer"), _matrix(auto, "adaptive")
    assert list(transfer.index) == rows and list(transfer.columns) == columns
    assert list(adaptive.index) == rows
    assert list(adaptive.columns) == ["clean", *ADAPTIVE, f"adaptive {dgn}", "worst case"]
    assert ((transfer >= 0) & (transfer <= 1)).all().all()
    pd.testing.assert_series_equal(transfer["clean"], adaptive["clean"])
    labels = _labels(auto)
    assert labels["original"] == runs.original
    assert {k: v["run_id"] for k, v in labels["rows"].items()} == dict(
        zip(rows, (runs.original, runs.hardened, runs.retrained, runs.retrained), strict=True)
    )
    assert labels["rows"][rows[1]]["stage"] == "advtrain"
    assert labels["rows"][rows[2]]["stage"] == "retrain"
    assert labels["columns"][columns[2]]["run_id"] == runs.pgd
    assert labels["columns"]["clean"] == {"run_id": runs.original, "split": "test", "n": 360}
    assert labels["adaptive"]["pgd"] == {
        "method": "pgd", "eps": EPS, "norm": "inf", "seed": 0, "steps": 3, "restarts": 1,
    }  # fmt: skip
    assert labels["adaptive"]["autoattack"]["attacks"] == "apgd-ce,apgd-t,fab-t,square"
    assert labels["adaptive"][f"adaptive {dgn}"]["epochs"] == 1
    assert labels["rows"][rows[0]]["run_name"] == rows[0]
    assert labels["kinds"] == {
        "clean": "clean", "fgsm ε=0.3": "fgsm", "pgd ε=0.3": "pgd", "dgn-nce": "dgn-nce",
        "fgsm": "fgsm", "pgd": "pgd", "autoattack": "autoattack",
        "adaptive dgn-nce": "adaptive-dgn-nce", "worst case": "worst_case",
    }  # fmt: skip


def test_transfer_cell_of_the_original_equals_the_attack_stage_accuracy(runs, auto):
    m = MlflowClient().get_run(auto).data.metrics
    transfer = _matrix(auto, "transfer")
    original = "train digits_cnn"
    for run_id in (runs.fgsm, runs.pgd):
        theirs = MlflowClient().get_run(run_id).data.metrics["test/adversarial_accuracy"]
        kind = "fgsm" if run_id == runs.fgsm else "pgd"
        # the attack stage averages in float32: the same count of 360, to float32 rounding
        assert transfer.loc[original, f"{kind} ε=0.3"] == pytest.approx(theirs, abs=1e-7)
        assert m[f"transfer/{kind}/original"] == pytest.approx(theirs, abs=1e-7)
        assert m[f"transfer/{kind}/best"] == transfer[f"{kind} ε=0.3"].max()
    assert m["transfer/fgsm/original"] < 0.2


def test_clean_column_equals_the_train_stage_test_accuracy(runs, auto):
    m = MlflowClient().get_run(auto).data.metrics
    theirs = MlflowClient().get_run(runs.original).data.metrics["test/accuracy"]
    assert m["transfer/clean/original"] == theirs
    assert m["adaptive/clean/original"] == theirs


def test_no_metric_or_tag_key_holds_a_run_id(runs, auto):
    """Keys a person can read: the chart view and the run table show no run-id sections."""
    import re

    data = MlflowClient().get_run(auto).data
    ids = re.compile(r"[0-9a-f]{8}")
    assert not [k for k in data.metrics if ids.search(k)]
    assert not [k for k in data.tags if ids.search(k)]
    assert {"adaptive/worst_case/best", "adaptive/autoattack/original"} <= set(data.metrics)


def test_adaptive_cells_and_the_worst_case_equal_the_attacks_run_directly(runs, auto):
    """Every adaptive cell is the attack crafted against the row's own model; the worst case
    is the share of inputs none of them fooled (an input-wise AND, not the column minimum)."""
    adaptive = _matrix(auto, "adaptive")
    test = tracking.Lineage().dataset_of(runs.original).test
    x, y = test.x, test.y
    gens = tracking.Lineage().generators(runs.dgn)
    train = tracking.Lineage().dataset_of(runs.original).train
    for row, model in list(_models(runs).items())[::2]:  # the original and a retrained model
        crafted = {
            "fgsm": attacks.fgsm(model, x, y, EPS),
            "pgd": attacks.pgd(model, x, y, EPS, steps=3, seed=0),
            "autoattack": Adaptive("autoattack", EPS, steps=3, n_queries=30).craft(model, x, y),
            "dgn": AdaptiveDGN(gens, train.x, train.y, epochs=1).craft(model, x, y),
        }
        correct = {k: predict(model, v).argmax(1) == y for k, v in crafted.items()}
        for name, ok in correct.items():
            column = name if name != "dgn" else "adaptive dgn-nce"
            assert adaptive.loc[row, column] == int(ok.sum()) / len(y), (row, name)
        clean = predict(model, x).argmax(1) == y
        robust = clean & torch.stack(list(correct.values())).all(0)
        assert adaptive.loc[row, "worst case"] == int(robust.sum()) / len(y)
        assert adaptive.loc[row, "worst case"] <= adaptive.loc[row].drop("worst case").min()


def test_every_cell_has_its_count_and_wilson_interval(runs, auto):
    for kind in ("transfer", "adaptive", "per_class"):
        cells = pd.read_csv(tracking.Lineage().artifact(auto, f"matrix/{kind}_cells.csv"))
        matrix = _matrix(auto, kind)
        assert len(cells) == matrix.size
        assert (cells["correct"] / cells["n"] == cells["accuracy"]).all()
        low, high = wilson(cells["correct"].to_numpy(), cells["n"].to_numpy())
        assert (cells["ci_low"] == low).all() and (cells["ci_high"] == high).all()
        assert (
            (cells["ci_low"] <= cells["accuracy"]) & (cells["accuracy"] <= cells["ci_high"])
        ).all()
    adaptive = pd.read_csv(tracking.Lineage().artifact(auto, "matrix/adaptive_cells.csv"))
    assert set(adaptive["n"]) == {360}
    summary = tracking.Lineage().artifact(auto, "summary.md").read_text()
    row = _rows(runs)[0]
    acc, lo, hi = adaptive[(adaptive["model"] == row) & (adaptive["test set"] == "pgd")].iloc[0][
        ["accuracy", "ci_low", "ci_high"]
    ]
    assert f"{100 * acc:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" in summary
    assert "worst case (n=360)" in summary


def test_per_class_accuracy_and_confusion_are_under_the_worst_case(runs, auto):
    adaptive, per_class = _matrix(auto, "adaptive"), _matrix(auto, "per_class")
    sizes = torch.bincount(tracking.Lineage().dataset_of(runs.original).test.y).numpy()
    assert list(per_class.index) == _rows(runs) and list(per_class.columns) == list("0123456789")
    for row in _rows(runs):
        weighted = float((per_class.loc[row].to_numpy() * sizes).sum() / sizes.sum())
        assert weighted == pytest.approx(adaptive.loc[row, "worst case"], abs=1e-12)
        path = f"matrix/confusion/{labels.slug(row)}.csv"  # the label as a file name
        conf = pd.read_csv(tracking.Lineage().artifact(auto, path), index_col=0).to_numpy()
        assert conf.sum() == 360 and (conf.sum(1) == sizes).all()
        assert conf.trace() == round(adaptive.loc[row, "worst case"] * 360)


def test_the_eps_curve_starts_at_clean_accuracy_and_is_logged_as_a_curve(runs, auto):
    curve = pd.read_csv(tracking.Lineage().artifact(auto, "matrix/eps_curve.csv"))
    adaptive = _matrix(auto, "adaptive")
    assert list(curve.columns) == ["model", "eps", "correct", "n", "accuracy", "ci_low", "ci_high"]
    assert sorted(set(curve["eps"])) == [0.0, 0.1, EPS]
    test = tracking.Lineage().dataset_of(runs.original).test
    client = MlflowClient()
    for row, model in _models(runs).items():
        part = curve[curve["model"] == row].set_index("eps")["accuracy"]
        assert part[0.0] == adaptive.loc[row, "clean"]
        x_adv = attacks.apgd(model, test.x, test.y, 0.1, steps=3)
        assert part[0.1] == _accuracy(model, x_adv, test.y)  # the curve's attack: apgd-ce
    by_eps = curve.pivot(index="eps", columns="model", values="accuracy")
    original = "train digits_cnn"
    for key, expected in (("original", by_eps[original]), ("best", by_eps.max(axis=1))):
        history = client.get_metric_history(auto, f"eps_curve/{key}")
        assert sorted((h.step, h.value) for h in history) == [
            (round(1000 * e), v) for e, v in expected.items()
        ]
    assert (curve.groupby("model")["accuracy"].diff().dropna() <= 0.02).all()  # falls with ε


def test_masking_checks_run_on_every_row_and_are_tagged(runs, auto):
    checks = pd.read_csv(tracking.Lineage().artifact(auto, "matrix/masking.csv"))
    assert list(dict.fromkeys(checks["model"])) == _rows(runs)
    names = ["unbounded", "not_converged", "black_box_stronger", "zero_gradient"]
    assert list(checks[checks["model"] == _rows(runs)[0]]["name"]) == names
    test = tracking.Lineage().dataset_of(runs.original).test
    model = results.load_model(runs.original)
    direct = masking_checks(model, test.x[:40], test.y[:40], EPS, seed=0)
    assert list(checks["value"][:4]) == pytest.approx([c.value for c in direct], abs=1e-12)
    tag = MlflowClient().get_run(auto).data.tags["robust.masking"]
    flagged = checks[checks["flagged"]]
    if flagged.empty:
        assert tag == "none flagged"
    else:
        for row, name in zip(flagged["model"], flagged["name"], strict=True):
            assert row in tag and name in tag
    summary = tracking.Lineage().artifact(auto, "summary.md").read_text()
    assert "## Gradient-masking checks (ε = 0.3, first 40 inputs)" in summary


def test_logs_key_metrics_per_column_artifacts_phases_and_lineage(runs, auto):
    r = MlflowClient().get_run(auto)
    m, tags = r.data.metrics, r.data.tags
    for name in ("transfer", "adaptive"):
        matrix = _matrix(auto, name)
        kinds = {col: _labels(auto)["kinds"][col] for col in matrix.columns}
        assert len(set(kinds.values())) == len(kinds)  # one kind per column here
        keys = {f"{name}/{k}/{which}" for k in kinds.values() for which in ("original", "best")}
        assert keys == {k for k in m if k.startswith(f"{name}/")}
        for col, kind in kinds.items():
            assert m[f"{name}/{kind}/original"] == pytest.approx(matrix[col].iloc[0], abs=1e-12)
            assert m[f"{name}/{kind}/best"] == pytest.approx(matrix[col].max(), abs=1e-12)
    for phase in ("load", "transfer", "adaptive", "curve", "masking"):
        assert f"time/{phase}_s" in m and f"energy/{phase}_kwh" in m
    arts = {a.path for a in MlflowClient().list_artifacts(auto, "matrix")}
    files = [
        f"{k}{e}"
        for k in ("transfer", "adaptive", "per_class")
        for e in (".csv", ".png", "_cells.csv")
    ]
    files += ["eps_curve.csv", "eps_curve.png", "masking.csv", "labels.json"]
    assert arts == {f"matrix/{f}" for f in files} | {"matrix/confusion"}
    assert tags["robust.stage"] == "evaluate" and tags["robust.upstream.model"] == runs.original
    assert tags["robust.upstream.model.1"] == runs.original
    assert tags["robust.upstream.model.2"] == runs.hardened
    assert tags["robust.upstream.attack.1"] == runs.fgsm
    assert tags["robust.upstream.retrain.1"] == runs.retrained
    assert r.data.params["model_runs"] == f"{runs.original},{runs.hardened}"
    assert r.data.params["retrain_runs"] == runs.retrained
    assert r.data.params["attack_runs"] == f"{runs.fgsm},{runs.pgd},{runs.dgn}"
    assert r.data.params["eps"] == "0.3,0.1"


def test_a_second_model_run_is_a_row_and_adaptive_can_be_off(runs, auto, caplog):
    caplog.set_level("WARNING", logger="pipelines.evaluate")
    p = evaluate.Params(
        model_runs=(runs.original, runs.other), attack_runs=(runs.fgsm,), adaptive=("none",),
        masking=False,
    )  # fmt: skip
    run_id = evaluate.main(p)
    transfer = _matrix(run_id, "transfer")
    # two runs of one name: each label gets its run id's start
    assert list(transfer.index) == [
        f"train digits_cnn ({runs.original[:8]})",
        f"train digits_cnn ({runs.other[:8]})",
    ]
    assert list(transfer.columns) == ["clean", "fgsm ε=0.3"]
    assert (
        transfer.iloc[:1].to_numpy() == _matrix(auto, "transfer").iloc[:1, :2].to_numpy()
    ).all()
    test = tracking.Lineage().dataset_of(runs.original).test  # every row sees the original's split
    assert transfer.iloc[1, 0] == _accuracy(results.load_model(runs.other), test.x, test.y)
    assert f"model run {runs.other} was trained on the split of seed 1" in caplog.text
    m = MlflowClient().get_run(run_id).data.metrics
    assert not any(k.startswith("adaptive/") or k == "time/adaptive_s" for k in m)
    arts = {a.path for a in MlflowClient().list_artifacts(run_id, "matrix")}
    assert "matrix/adaptive.csv" not in arts and _labels(run_id)["adaptive"] == {}
    assert "matrix/masking.csv" not in arts


def test_an_adaptive_dgn_at_another_budget_is_left_out_with_a_warning(runs, auto, caplog):
    caplog.set_level("WARNING", logger="pipelines.evaluate")
    p = evaluate.Params(
        attack_runs=(runs.dgn,), adaptive=("fgsm",), eps=(0.2,), masking=False, quiet=True
    )
    adaptive = _matrix(evaluate.main(p), "adaptive")
    assert list(adaptive.columns) == ["clean", "fgsm"]
    assert "adaptive dgn-nce left out" in caplog.text


def test_two_retrain_runs_of_one_name_are_told_apart(runs, auto):
    """Rows of two runs named alike get their run ids' start, and each keeps its own run's
    best model."""
    twin = _retrain(runs.original, runs.fgsm, note="a second retrain run, named alike")
    p = evaluate.Params(
        model_runs=(runs.original,), attack_runs=(runs.fgsm,), retrain_runs=(runs.retrained, twin),
        adaptive=("none",), masking=False, quiet=True,
    )  # fmt: skip
    run_id = evaluate.main(p)
    expected = {
        f"retrain c2 {metric} ({r[:8]})": (r, metric)
        for r in (runs.retrained, twin)
        for metric in ("deepgini", "random")
    }
    assert list(_matrix(run_id, "transfer").index) == ["train digits_cnn", *expected]
    rows = _labels(run_id)["rows"]
    assert {k: (v["run_id"], v["metric"]) for k, v in rows.items() if "metric" in v} == expected


def test_identical_evaluation_is_reused(runs, auto, caplog):
    caplog.set_level("INFO", logger="robust")
    p = evaluate.Params(
        model_runs=(runs.original, runs.hardened), attack_runs=(runs.fgsm, runs.pgd, runs.dgn),
        retrain_runs=(runs.retrained,), adaptive=ADAPTIVE, eps=(EPS, 0.1), **SHORT,
    )  # fmt: skip
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
        pytest.param(["--eps", "0.3,-0.1"], "eps must be a finite number of at least 0", id="eps"),
        pytest.param(["--eps", "0.3,x"], "eps must be a number, but got eps='x'", id="eps_nan"),
        pytest.param(["--eps", "1.5"], "eps must be at most 1, the largest Linf", id="eps_big"),
        pytest.param(["--norm", "1"], "norm must be one of inf, 2", id="norm"),
        pytest.param(["--apgd_steps", "0"], "apgd_steps must be at least 1", id="apgd"),
        pytest.param(["--restarts", "0"], "restarts must be at least 1", id="restarts"),
        pytest.param(["--n_queries", "0"], "n_queries must be at least 1", id="queries"),
        pytest.param(["--dgn_epochs", "-1"], "dgn_epochs must be at least 0", id="dgn"),
        pytest.param(["--masking_inputs", "0"], "masking_inputs must be at least 1", id="mask"),
        pytest.param(["--batch_size", "0"], "batch_size must be at least 1", id="batch"),
        pytest.param(["--device", "gpu"], "device must be one of auto, cpu, cuda", id="device"),
        pytest.param(
            ["--adaptive", "pgd,cw"], "adaptive must be one of fgsm, pgd, apgd-ce", id="adaptive"
        ),
        pytest.param(["--adaptive", "pgd,pgd"], "adaptive must not repeat", id="repeat"),
        pytest.param(["--curve_attack", "dgn"], "curve_attack must be one of fgsm", id="curve"),
        pytest.param(["--dataset", "svhn"], "dataset must be one of digits", id="dataset"),
    ],
)
def test_bad_parameters(argv, message):
    with pytest.raises(ConfigError, match=message):
        _cli.parse(evaluate.Params, argv)


def test_limits_are_allowed():
    p = _cli.parse(evaluate.Params, ["--steps", "1", "--eps", "0", "--batch_size", "1"])
    assert (p.steps, p.eps, p.batch_size, p.model_runs) == (1, (0.0,), 1, None)
    p = _cli.parse(evaluate.Params, ["--eps", "0.3, 0.1", "--norm", "2", "--adaptive", "none"])
    assert (p.eps, p.norm, p.adaptive, p.budgets()) == ((0.3, 0.1), "2", (), (0.3, 0.1))
    assert evaluate.Params(norm="L2").budgets() == (1.5,)
    assert evaluate.Params(dataset="cifar10").budgets() == (8 / 255,)
    assert _cli.parse(evaluate.Params, ["--model_runs", "a, b"]).model_runs == ("a", "b")
