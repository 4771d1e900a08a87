"""The advtrain stage end to end on digits (pipelines/advtrain.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from pipelines import _cli, advtrain, attack, train
from robust import results, tracking
from robust.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One store for the module: a 2-epoch train run, an FGSM attack run on its train and test
    splits, and a 1-epoch NCE DGN attack run on its test split."""
    import mlflow

    root = tmp_path_factory.mktemp("store")
    old_cwd, old_uri = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(root)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    try:
        model_run = train.main(train.Params(epochs=2, quiet=True))
        fgsm_run = attack.main(attack.Params(method="fgsm", quiet=True))
        dgn_run = attack.main(
            attack.Params(method="dgn", dgn_epochs=1, splits=("test",), quiet=True)
        )
        yield {"model": model_run, "fgsm": fgsm_run, "dgn": dgn_run}
    finally:
        os.chdir(old_cwd)
        if old_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri


def _advtrain(**kw) -> str:
    return advtrain.main(advtrain.Params(**{"epochs": 2, "quiet": True, **kw}))


def _steps(run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in MlflowClient().get_metric_history(run_id, key))


def _same_weights(a, b, **tol) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    close = torch.allclose if tol else torch.equal
    return all(close(sa[k], sb[k], **tol) for k in sa)


def test_static_stage_logs_the_contract_and_is_a_model_run(runs):
    run_id = _advtrain(attack_run=runs["fgsm"])
    r = MlflowClient().get_run(run_id)
    params, metrics, tags = r.data.params, r.data.metrics, r.data.tags
    assert r.info.status == "FINISHED" and tags["robust.stage"] == "advtrain"
    assert tags["robust.upstream.model"] == runs["model"]
    assert tags["robust.upstream.attack"] == runs["fgsm"]
    assert params["model_run"] == runs["model"] and params["attack_run"] == runs["fgsm"]
    assert (params["mode"], params["alpha"], params["start"]) == ("static", "0.5", "fresh")
    assert (params["optimizer"], params["batch_size"], params["n_pairs"]) == ("adam", "32", "1078")
    for key in (
        "train/loss",
        "train/accuracy",
        "train/clean_loss",
        "train/adversarial_loss",
        "train/adversarial_accuracy",
        "val/loss",
        "val/accuracy",
    ):
        assert _steps(run_id, key) == [1, 2], key
    assert "train/attack_s" not in metrics  # static: nothing is regenerated
    for key in (
        "test/accuracy",
        "test/f1_macro",
        "transfer/adversarial_accuracy",
        "transfer/clean_accuracy",
        "transfer/success_rate",
        "train/samples_per_s",
        "time/load_s",
        "time/fit_s",
        "time/evaluate_s",
        "time/save_s",
        "energy/fit_kwh",
        "energy/total_kwh",
    ):
        assert key in metrics, key
    # the FGSM set it trained on no longer fools it as it fooled the original
    original = MlflowClient().get_run(runs["fgsm"]).data.metrics["test/adversarial_accuracy"]
    assert metrics["transfer/adversarial_accuracy"] > original + 0.1
    # a model run: its dataset resolves through the train run, and attack can attack it
    assert tracking.Lineage().train_run_of(run_id) == runs["model"]
    ds = tracking.Lineage().dataset_of(run_id)
    assert len(ds.train) == 1078 and torch.equal(
        ds.test.y, tracking.Lineage().dataset_of(runs["model"]).test.y
    )
    attacked = attack.main(
        attack.Params(model_run=run_id, method="fgsm", splits=("test",), quiet=True)
    )
    a = MlflowClient().get_run(attacked).data
    assert a.tags["robust.upstream.model"] == run_id
    assert a.metrics["test/clean_accuracy"] == pytest.approx(metrics["test/accuracy"])
    # and a finetune start takes its weights (a tiny lr keeps them), two hops from train
    tuned = _advtrain(
        model_run=run_id, attack_run=runs["fgsm"], start="finetune", lr=1e-9, epochs=1
    )
    assert _same_weights(results.load_model(tuned), results.load_model(run_id), atol=1e-5)
    assert not _same_weights(
        results.load_model(tuned), results.load_model(runs["model"]), atol=1e-2
    )
    assert tracking.Lineage().train_run_of(tuned) == runs["model"]


def test_alpha_one_fresh_start_reproduces_the_train_run(runs):
    """α = 1 is clean training: same seed, schedule and fresh start give the train run's
    weights bit for bit."""
    run_id = _advtrain(attack_run=runs["fgsm"], alpha=1.0)
    assert _same_weights(results.load_model(run_id), results.load_model(runs["model"]))
    assert "train/adversarial_loss" not in MlflowClient().get_run(run_id).data.metrics


def test_online_pgd_and_dgn(runs):
    pgd_run = _advtrain(mode="online", method="pgd", steps=2, epochs=1)
    r = MlflowClient().get_run(pgd_run).data
    assert (r.params["eps"], r.params["every"], r.params["attack_run"]) == ("0.3", "batch", "auto")
    assert "robust.upstream.attack" not in r.tags
    assert "transfer/adversarial_accuracy" not in r.metrics
    assert _steps(pgd_run, "train/attack_s") == [1]

    dgn_run = _advtrain(mode="online", method="dgn", attack_run=runs["dgn"], dgn_epochs=2)
    r = MlflowClient().get_run(dgn_run).data
    assert r.tags["robust.upstream.attack"] == runs["dgn"]
    assert r.tags["robust.upstream.model"] == runs["model"]  # auto: the attack run's model
    assert (r.params["eps"], r.params["every"]) == ("0.3", "epoch")
    assert _steps(dgn_run, "dgn/class3_loss") == [1, 2, 3, 4]  # 2 DGN epochs per epoch
    assert _steps(dgn_run, "train/attack_s") == [1, 2]
    assert "transfer/adversarial_accuracy" in r.metrics  # the DGN run's adversarial test set


def test_online_trades(runs):
    run_id = _advtrain(mode="online", method="trades", steps=2, epochs=1)
    r = MlflowClient().get_run(run_id).data
    p, m = r.params, r.metrics
    assert (p["method"], p["beta"], p["alpha"]) == ("trades", "6", "auto")  # α: not used
    assert (p["eps"], p["every"], p["step_size"], p["attack_run"]) == (
        "0.3",
        "batch",
        "auto",
        "auto",
    )
    assert "robust.upstream.attack" not in r.tags
    # train/adversarial_loss is the KL term before its weight β
    assert m["train/loss"] == pytest.approx(
        m["train/clean_loss"] + 6 * m["train/adversarial_loss"]
    )
    for key in ("train/adversarial_accuracy", "train/accuracy", "val/accuracy"):
        assert _steps(run_id, key) == [1], key
    assert _steps(run_id, "train/attack_s") == [1]
    assert "test/accuracy" in m and "transfer/adversarial_accuracy" not in m


def test_each_objective_resolves_its_own_weight_only():
    trades = advtrain.Params(mode="online", method="trades").resolved()
    assert (trades.alpha, trades.beta, trades.eps, trades.every) == (None, 6.0, 0.3, "batch")
    assert advtrain.Params(mode="online", method="trades", beta=0.0).resolved().beta == 0.0
    pgd = advtrain.Params(mode="online", method="pgd").resolved()
    assert (pgd.alpha, pgd.beta) == (0.5, None)
    assert advtrain.Params(alpha=0.25).resolved().alpha == 0.25


def test_runs_that_do_not_fit_are_refused(runs):
    with pytest.raises(ConfigError, match=r"has method=fgsm; pass a dgn attack run"):
        _advtrain(mode="online", method="dgn", attack_run=runs["fgsm"])
    with pytest.raises(ConfigError, match="has no adversarial train set"):
        _advtrain(attack_run=runs["dgn"])
    with pytest.raises(ConfigError, match="is a 'train' run, but a 'attack' run is required"):
        _advtrain(attack_run=runs["model"])
    other = train.main(train.Params(epochs=1, seed=1, quiet=True))
    with pytest.raises(ConfigError, match=r"must use the same data .* seed=1 vs 0"):
        _advtrain(model_run=other, attack_run=runs["fgsm"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--mode", "mixed"], "mode must be one of static, online", id="mode"),
        pytest.param(["--method", "cw"], "method must be one of fgsm, pgd, dgn", id="method"),
        pytest.param(["--every", "step"], "every must be one of batch, epoch", id="every"),
        pytest.param(["--start", "warm"], "start must be one of fresh, finetune", id="start"),
        pytest.param(
            ["--alpha", "1.5"], r"alpha must be in \[0, 1\], but got alpha=1.5", id="a>1"
        ),
        pytest.param(["--alpha", "-0.5"], "alpha=-0.5", id="a<0"),
        pytest.param(["--alpha", "x"], "alpha must be a number", id="a-text"),
        pytest.param(["--eps", "-1"], "eps must be a finite number of at least 0", id="eps"),
        pytest.param(["--steps", "0"], "steps must be at least 1", id="steps"),
        pytest.param(["--dgn_epochs", "0"], "dgn_epochs must be at least 1", id="dgn_epochs"),
        pytest.param(["--step_size", "0"], "step_size must be greater than 0", id="step_size"),
        pytest.param(
            ["--mode", "online", "--method", "dgn", "--every", "batch"],
            "every must be epoch",
            id="dgn-batch",
        ),
        pytest.param(
            ["--mode", "online", "--method", "trades", "--beta", "-1"],
            r"^beta must be at least 0, but got beta=-1.0$",
            id="beta<0",
        ),
        pytest.param(
            ["--mode", "online", "--method", "trades", "--beta", "nan"],
            r"^beta must be a finite number, but got beta='nan'$",
            id="beta-nan",
        ),
        pytest.param(
            ["--method", "trades"],
            r"^method=trades crafts its inputs against the model being trained: mode must be "
            r"online, but got mode=static$",
            id="trades-static",
        ),
        pytest.param(
            ["--mode", "online", "--method", "trades", "--alpha", "0.5"],
            r"trades weighs its KL term with beta: leave alpha auto with method=trades, but got "
            r"alpha=0.5$",
            id="trades-alpha",
        ),
        pytest.param(
            ["--mode", "online", "--beta", "2"],
            r"^beta weighs the KL term of method=trades only: leave it auto with method=pgd, "
            r"but got beta=2.0$",
            id="pgd-beta",
        ),
    ],
)
def test_bad_parameters(argv, message):
    with pytest.raises(ConfigError, match=message):
        _cli.parse(advtrain.Params, argv)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        pytest.param(["--alpha", "2"], "alpha must be in [0, 1], but got alpha=2.0", id="alpha"),
        pytest.param(
            ["--mode", "online", "--method", "trades", "--beta", "-1"],
            "beta must be at least 0, but got beta=-1.0",
            id="trades-beta",
        ),
    ],
)
def test_bad_parameter_exits_2_with_one_line(tmp_path, argv, line):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/m.db")
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.advtrain", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"error: {line}\n"


def test_static_advtrain_fetches_each_upstream_run_once(runs, monkeypatch):
    """Every look-up of the model and attack runs goes through one lineage: on a remote server
    each ``get_run`` is a round trip, so each upstream run is fetched exactly once."""
    from collections import Counter

    from robust.tracking import lineage

    lineage.forget()  # this process fetched them before (fixtures, other tests)
    calls = Counter()
    real = MlflowClient.get_run
    monkeypatch.setattr(
        MlflowClient, "get_run", lambda self, run_id: calls.update([run_id]) or real(self, run_id)
    )
    _advtrain(attack_run=runs["fgsm"], force=True)
    assert calls[runs["fgsm"]] == 1
    assert calls[runs["model"]] == 1
