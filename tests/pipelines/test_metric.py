"""The metric stage end to end on digits (pipelines/metric.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

from pipelines import _cli, attack, metric, train
from robust import data, guidance, results, tracking
from robust.errors import ConfigError
from robust.models import predict
from tests.conftest import experiment_ids, isolated_store

ROOT = Path(__file__).resolve().parents[2]
N_TRAIN = 1078  # digits' train split; FGSM attacks every input, so as many adversarial ones


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One store for the module: a 3-epoch train run and an FGSM attack of train and test."""
    root = tmp_path_factory.mktemp("store")
    with isolated_store(root):
        model_run = train.main(train.Params(epochs=3, quiet=True))
        p = attack.Params(method="fgsm", splits=("train", "test"), quiet=True)
        yield model_run, attack.main(p)


@pytest.fixture(scope="module")
def full(runs) -> str:
    """The metric stage with every default (attack_run=auto, all metrics, both parts)."""
    return metric.main(metric.Params(quiet=True))


def _artifacts(run_id: str) -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: load_file(tracking.Lineage().artifact(run_id, f"guidance/{name}.safetensors"))
        for name in ("scores", "order", "pool")
    }


def _newest_metric_run() -> mlflow.entities.Run:
    (run,) = MlflowClient().search_runs(
        experiment_ids(MlflowClient()),
        "tags.`robust.stage` = 'metric'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    return run


def test_every_metric_scores_and_orders_the_whole_pool(runs, full):
    a = _artifacts(full)
    n = N_TRAIN + N_TRAIN
    assert set(a["scores"]) == set(a["order"]) == set(guidance.METRICS)
    for m in guidance.METRICS:
        s, o = a["scores"][m], a["order"][m]
        assert s.dtype == torch.float64 and s.shape == (n,), m
        assert o.dtype == torch.int64 and torch.equal(o.sort().values, torch.arange(n)), m
        assert torch.all(s[o][:-1] >= s[o][1:]), m  # highest first
        assert torch.equal(o, torch.from_numpy(guidance.order(s.numpy(), 0)))
    nc = a["scores"]["nc"]
    assert torch.all((nc >= 0) & (nc <= 1))


def test_pool_lists_clean_then_adversarial_inputs_with_labels_and_predictions(runs, full):
    model_run, attack_run = runs
    pool = _artifacts(full)["pool"]
    adv = load_file(tracking.Lineage().artifact(attack_run, "adversarial/train.safetensors"))
    ds = data.load("digits", seed=0)
    assert torch.equal(
        pool["source"], torch.cat([torch.zeros(N_TRAIN), torch.ones(N_TRAIN)]).long()
    )
    assert torch.equal(pool["index"], torch.arange(N_TRAIN).repeat(2))
    assert torch.equal(pool["y"], torch.cat([ds.train.y, adv["y"]]))
    model = results.load_model(model_run)
    x = torch.cat([ds.train.x, adv["x"]])
    assert torch.equal(pool["pred"], predict(model, x).argmax(1))


def test_summary_time_metrics_histograms_and_lineage(runs, full):
    model_run, attack_run = runs
    client = MlflowClient()
    r = client.get_run(full)
    m, params, tags = r.data.metrics, r.data.params, r.data.tags
    assert params["attack_run"] == attack_run and params["model_run"] == model_run
    assert params["metrics"] == ",".join(guidance.METRICS)
    assert tags["robust.upstream.attack"] == attack_run
    assert tags["robust.upstream.model"] == model_run
    assert m["pool/n_clean"] == N_TRAIN and m["pool/n_adversarial"] == N_TRAIN
    assert "time/traces_s" in m and "time/load_s" in m
    stats = ("mean", "std", "min", "max", "median", "clean_mean", "adversarial_mean")
    for name in guidance.METRICS:
        for key in (*stats, "samples_per_s"):
            assert f"{name}/{key}" in m, f"{name}/{key}"
        assert f"time/{name}_s" in m and f"energy/{name}_kwh" in m, name
        assert m[f"{name}/min"] <= m[f"{name}/median"] <= m[f"{name}/max"]
    for key in ("set_coverage", "set_coverage_clean", "set_coverage_adversarial"):
        assert 0 < m[f"nc/{key}"] <= 1
    for name in ("lsa", "dsa", "deepgini", "entropy"):  # FGSM at ε = 0.3 surprises the model
        assert m[f"{name}/adversarial_mean"] > m[f"{name}/clean_mean"], name
    arts = {a.path for a in client.list_artifacts(full, "histograms")}
    assert arts == {f"histograms/{name}.png" for name in guidance.METRICS}


def test_dsa_does_not_count_a_clean_input_as_its_own_neighbour(full):
    dsa = _artifacts(full)["scores"]["dsa"]
    assert (dsa[:N_TRAIN] > 0).float().mean() > 0.99  # the seed scored every one 0
    assert torch.isfinite(dsa).all()


def test_lsa_leaves_a_clean_input_out_of_its_own_density_unless_told_not_to(runs, full):
    _, attack_run = runs
    argv = ["--attack_run", attack_run, "--metrics", "lsa", "--self_exclusion", "false"]
    assert _cli.run(metric.main, metric.Params, [*argv, "--quiet", "true"]) == 0
    run = _newest_metric_run()
    assert run.data.params["self_exclusion"] == "false"
    kept = _artifacts(run.info.run_id)["scores"]["lsa"]  # the seed's LSA
    left_out = _artifacts(full)["scores"]["lsa"]  # the default
    torch.testing.assert_close(kept[N_TRAIN:], left_out[N_TRAIN:])  # adversarial: no own trace
    # with its own kernel in its density a training input looks unsurprising
    assert (kept[:N_TRAIN] < left_out[:N_TRAIN]).float().mean() > 0.9


def test_pool_json_describes_the_artifacts(runs, full):
    model_run, attack_run = runs
    info = json.loads(tracking.Lineage().artifact(full, "guidance/pool.json").read_text())
    assert info["attack_run"] == attack_run and info["model_run"] == model_run
    assert info["pool"] == "train_and_adversarial"
    assert (info["n_clean"], info["n_adversarial"]) == (N_TRAIN, N_TRAIN)
    assert info["metrics"] == list(guidance.METRICS) and info["layer"] == ["last_hidden"]
    assert set(info["pool_keys"]) == {"source", "index", "y", "pred"}
    assert "highest score first" in info["order"]


def test_identical_metric_run_is_reused(runs, full, caplog):
    caplog.set_level("INFO", logger="robust")
    _, attack_run = runs
    same = metric.Params(attack_run=attack_run, metrics=tuple(reversed(guidance.METRICS)))
    assert metric.main(same) == full  # auto and "all" resolve to the same ids and metrics
    assert f"reusing FINISHED metric run {full}" in caplog.text


def test_adversarial_pool_holds_only_the_adversarial_part(runs, full):
    _, attack_run = runs
    p = metric.Params(attack_run=attack_run, pool="adversarial", metrics=("nc", "dsa"))
    run_id = metric.main(p)
    a = _artifacts(run_id)
    assert set(a["scores"]) == {"nc", "dsa"}
    assert torch.equal(a["pool"]["source"], torch.ones(N_TRAIN, dtype=torch.int64))
    assert torch.equal(a["pool"]["index"], torch.arange(N_TRAIN))
    everything = _artifacts(full)["scores"]  # same reference set, so the same scores
    for name in ("nc", "dsa"):
        torch.testing.assert_close(a["scores"][name], everything[name][N_TRAIN:])
    m = MlflowClient().get_run(run_id).data.metrics
    assert m["pool/n_clean"] == 0 and "nc/set_coverage_clean" not in m
    assert "dsa/clean_mean" not in m and "dsa/mean" in m
    info = json.loads(tracking.Lineage().artifact(run_id, "guidance/pool.json").read_text())
    assert info["pool"] == "adversarial" and info["n_clean"] == 0


def test_a_subset_of_metrics_logs_only_those(runs):
    _, attack_run = runs
    argv = ["--attack_run", attack_run, "--metrics", "lsa,dsa", "--quiet", "true"]
    assert _cli.run(metric.main, metric.Params, argv) == 0
    run = _newest_metric_run()
    assert run.info.status == "FINISHED" and run.data.params["metrics"] == "lsa,dsa"
    m = run.data.metrics
    assert "lsa/mean" in m and "time/dsa_s" in m
    for name in ("nc", "deepgini", "entropy", "random"):
        assert not any(k.startswith(f"{name}/") or k == f"time/{name}_s" for k in m), name
    assert set(_artifacts(run.info.run_id)["order"]) == {"lsa", "dsa"}
    arts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "histograms")}
    assert arts == {"histograms/lsa.png", "histograms/dsa.png"}


def test_unknown_layer_fails_the_run_with_one_line(runs, capsys):
    _, attack_run = runs
    argv = ["--attack_run", attack_run, "--metrics", "nc", "--layer", "fc9", "--quiet", "true"]
    assert _cli.run(metric.main, metric.Params, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: layer must be one of last_hidden, ") and err.count("\n") == 1
    run = _newest_metric_run()
    assert run.info.status == "FAILED" and "'fc9'" in run.data.tags["robust.error"]


def test_bad_parameter_fails_the_adopted_run(runs, monkeypatch, capsys):
    run_id = MlflowClient().create_run("0").info.run_id  # as `mlflow run` makes one
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    assert _cli.run(metric.main, metric.Params, ["--metrics", "nc,gini"]) == 2
    message = (
        "metrics must be one of all, nc, lsa, dsa, deepgini, entropy, random, "
        "but got metrics='gini'"
    )
    assert capsys.readouterr().err == f"error: {message}\n"
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["robust.error"] == message


def test_attack_run_must_match_and_be_an_attack_run(runs):
    model_run, attack_run = runs
    with pytest.raises(ConfigError, match="is a 'train' run, but a 'attack' run is required"):
        metric.main(metric.Params(attack_run=model_run, quiet=True))
    with pytest.raises(ConfigError, match="attacked a model on dataset 'digits', not 'mnist'"):
        metric.main(metric.Params(attack_run=attack_run, dataset="mnist", quiet=True))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--metrics", "nc,foo"],
            "metrics must be one of all, nc, lsa, dsa, deepgini, entropy, random, "
            "but got metrics='foo'",
            id="metric",
        ),
        pytest.param(["--metrics", ""], "metrics must be one of all, nc", id="no-metric"),
        pytest.param(
            ["--pool", "test"],
            "pool must be one of train_and_adversarial, adversarial, but got pool='test'",
            id="pool",
        ),
        pytest.param(["--layer", ""], "layer must name at least one layer", id="layer"),
        pytest.param(
            ["--threshold", "1"], "threshold must be in [0, 1), but got threshold=1.0", id="th"
        ),
        pytest.param(["--threshold", "-0.1"], "threshold must be in [0, 1)", id="th-low"),
        pytest.param(["--var_threshold", "-1"], "var_threshold must be at least 0", id="var"),
        pytest.param(
            ["--self_exclusion", "maybe"],
            "self_exclusion must be true or false",
            id="self-exclusion",
        ),
        pytest.param(["--seed", "-1"], "seed must be at least 0", id="seed"),
        pytest.param(["--batch_size", "0"], "batch_size must be at least 1", id="batch"),
        pytest.param(["--device", "tpu"], "device must be one of auto, cpu, cuda", id="device"),
    ],
)
def test_bad_parameters(argv, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)) as info:
        _cli.parse(metric.Params, argv)
    assert "\n" not in str(info.value)


def test_limits_accept_their_boundary():
    p = _cli.parse(
        metric.Params,
        ["--threshold", "0", "--var_threshold", "0", "--metrics", "all", "--layer", "a,b"],
    )
    assert (p.threshold, p.var_threshold, p.layer) == (0.0, 0.0, ("a", "b"))
    assert p.selected() == guidance.METRICS
    assert metric.Params(metrics=("random", "nc", "nc")).selected() == ("nc", "random")


def test_help_lists_every_parameter():
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.metric", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert out.startswith("usage: python -m pipelines.metric")
    for field in metric.Params.__dataclass_fields__:
        assert f"--{field}" in out, field
    assert "(default: all)" in out and "guidance/order.safetensors" in out


def test_attack_without_a_train_split_is_refused(runs):
    """Last: its test-only attack run becomes the newest, which attack_run=auto would pick."""
    test_only = attack.main(attack.Params(method="fgsm", splits=("test",), quiet=True))
    with pytest.raises(ConfigError, match=r"has no adversarial train set .*-P splits=train,test"):
        metric.main(metric.Params(quiet=True))
    assert tracking.Lineage("digits").latest("attack") == test_only
