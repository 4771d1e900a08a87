"""The attack stage end to end on digits (pipelines/attack.py)."""

from __future__ import annotations

import json

import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

from pipelines import attack, train
from robust import tracking
from robust.attacks import lp
from robust.errors import ConfigError
from robust.tracking import cache


@pytest.fixture
def model_run(mlflow_store) -> str:
    return train.main(train.Params(epochs=3, quiet=True))


def _tensors(run_id: str, split: str) -> dict[str, torch.Tensor]:
    return load_file(tracking.Lineage().artifact(run_id, f"adversarial/{split}.safetensors"))


def test_an_fgsm_run_logs_only_the_settings_fgsm_takes(model_run):
    run_id = attack.main(attack.Params(method="fgsm", splits=("test",), quiet=True))
    params = MlflowClient().get_run(run_id).data.params
    assert {"method", "eps", "norm", "splits"} <= set(params)
    assert not (set(attack.DGN_ONLY) | set(attack.ITERATIVE)) & set(params)


def test_pgd_stage_logs_metrics_artifacts_and_lineage(model_run):
    run_id = attack.main(attack.Params(method="pgd", steps=5, splits=("test",), quiet=True))
    r = MlflowClient().get_run(run_id)
    m = r.data.metrics
    assert r.data.tags["robust.upstream.model"] == model_run
    assert r.data.params["eps"] == "0.3" and r.data.params["model_run"] == model_run
    for key in (
        "clean_accuracy",
        "adversarial_accuracy",
        "success_rate",
        "linf_mean",
        "linf_max",
        "l2_mean",
        "l2_max",
        "samples_per_s",
    ):
        assert f"test/{key}" in m, key
    assert m["test/adversarial_accuracy"] < m["test/clean_accuracy"] - 0.5
    assert "test/accuracy" not in m  # one meaning per key: clean accuracy in train runs
    assert m["test/linf_max"] == pytest.approx(0.3, abs=1e-6)
    assert "time/attack_test_s" in m and "energy/attack_test_kwh" in m
    t = _tensors(run_id, "test")
    assert t["x"].shape == (360, 1, 8, 8) and torch.equal(t["index"], torch.arange(360))
    assert t["x"].min() >= 0 and t["x"].max() <= 1
    arts = {a.path for a in MlflowClient().list_artifacts(run_id, "grid")}
    assert arts == {"grid/test.png"}


def test_guided_retraining_preset_draws_thirds_of_the_test_size(model_run):
    run_id = attack.main(attack.Params(preset="guided_retraining", quiet=True))
    m = MlflowClient().get_run(run_id).data.metrics
    names = json.loads(
        tracking.Lineage().artifact(run_id, "adversarial/attacks.json").read_text()
    )["attacks"]
    assert list(names.values()) == ["bim_l2", "bim_l1", "fgsm_linf"]
    from robust.data import load

    ds = load("digits")
    for split in ("train", "test"):
        t = _tensors(run_id, split)
        assert len(t["x"]) == 360  # n_adv defaults to the test-set size, as in the seed
        assert len(set(t["index"].tolist())) == 360
        assert torch.bincount(t["attack"]).tolist() == [120, 120, 120]
        x = getattr(ds, split).x[t["index"]]
        for code, norm in enumerate(("2", "1", "inf")):
            sel = t["attack"] == code
            assert torch.all(lp(t["x"][sel] - x[sel], norm) <= 0.05 + 1e-6)
        assert f"{split}/fgsm_linf/adversarial_accuracy" in m
    assert m["test/adversarial_accuracy"] <= m["test/clean_accuracy"]


def test_identical_attack_is_reused(model_run, caplog):
    caplog.set_level("INFO", logger="robust")
    p = attack.Params(method="fgsm", splits=("test",), quiet=True)
    first = attack.main(p)
    assert attack.main(p) == first
    assert f"reusing FINISHED attack run {first}" in caplog.text


def test_model_run_must_be_a_train_run(model_run):
    first = attack.main(attack.Params(method="fgsm", splits=("test",), quiet=True))
    wanted = "is a 'attack' run, but a 'train' or 'advtrain' run is required"
    with pytest.raises(ConfigError, match=wanted):
        attack.main(attack.Params(model_run=first, quiet=True))
    with pytest.raises(ConfigError, match="was trained on dataset 'digits', not 'mnist'"):
        attack.main(attack.Params(model_run=model_run, dataset="mnist", quiet=True))


def test_without_a_train_run_the_error_says_what_to_run(mlflow_store):
    with pytest.raises(ConfigError, match=r"no FINISHED train run on dataset 'digits'.*-e train"):
        attack.main(attack.Params(quiet=True))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--method", "cw"], "method must be one of fgsm, pgd, bim", id="method"),
        pytest.param(["--norm", "3"], "norm must be one of inf, 2, 1", id="norm"),
        pytest.param(["--eps", "-1"], "eps must be a finite number of at least 0", id="eps"),
        pytest.param(
            ["--splits", "train,dev"], "splits must be one of train, val, test", id="split"
        ),
        pytest.param(["--preset", "x"], "preset must be one of guided_retraining", id="preset"),
        pytest.param(["--steps", "0"], "steps must be at least 1", id="steps"),
        pytest.param(
            ["--dgn_clip", "sign"],
            "^dgn_clip must be one of straight_through, tanh, generation, but got "
            "dgn_clip='sign'$",
            id="dgn_clip",
        ),
        pytest.param(
            ["--spectrum_inputs", "pgd"],
            "^spectrum_inputs must be one of fgsm, noise, clean, but got spectrum_inputs='pgd'$",
            id="spectrum_inputs",
        ),
        pytest.param(
            ["--method", "dgn", "--p_min", "1"],
            r"^p_min must be in \[0, 1\) \(0: no bound\), but got p_min=1.0$",
            id="p_min",
        ),
        pytest.param(
            ["--method", "dgn", "--loss", "lrp", "--p_min", "0.1"],
            "^the lrp loss takes the weights alpha, but got p_min$",
            id="p_min-lrp",
        ),
    ],
)
def test_bad_parameters(argv, message):
    from pipelines import _cli

    with pytest.raises(ConfigError, match=message):
        _cli.parse(attack.Params, argv)


def test_dgn_objective_settings_are_resolved_and_part_of_the_reuse_key(model_run):
    """dgn_clip and p_min reach the logged params (p_min resolved from auto), and a run that
    differs in one of them is a new run, not a reuse; settings nce does not take (the
    spectra, the weights of other losses) are neither logged nor keyed, so changing one
    reuses."""
    common = {"method": "dgn", "dgn_epochs": 1, "splits": ("test",), "quiet": True}
    first = attack.main(attack.Params(**common))
    client = MlflowClient()
    params = client.get_run(first).data.params
    assert params["dgn_clip"] == "straight_through" and params["p_min"] == "0.01"
    assert {"alpha", "beta"} <= set(params)
    assert not {"spectrum_inputs", "measure", "star", "lam", "gamma"} & set(params)
    assert not set(attack.ITERATIVE) & set(params)
    assert attack.main(attack.Params(**common)) == first
    assert attack.main(attack.Params(**common, spectrum_inputs="clean")) == first
    keys = {client.get_run(first).data.tags[cache.KEY_TAG]}
    for change in ({"dgn_clip": "generation"}, {"p_min": 0.0}, {"loss": "susp"}):
        other = attack.main(attack.Params(**common, **change))
        assert other != first
        keys.add(client.get_run(other).data.tags[cache.KEY_TAG])
        m = client.get_run(other).data.metrics
        assert m["test/linf_max"] <= 0.3 + 1e-6
    assert len(keys) == 4
