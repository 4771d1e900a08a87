"""The attack stage's DGN method end to end on digits (pipelines/attack.py)."""

from __future__ import annotations

import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

from pipelines import attack, train
from robust import results, tracking
from robust.errors import ConfigError
from robust.models import predict


@pytest.fixture(scope="module")
def dgn_runs(tmp_path_factory):
    """A train run and a 2-epoch NCE DGN attack run in one store for the module."""
    import os

    import mlflow

    root = tmp_path_factory.mktemp("store")
    old_cwd, old_uri = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(root)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    try:
        model_run = train.main(train.Params(epochs=3, quiet=True))
        p = attack.Params(method="dgn", loss="nce", dgn_epochs=2, splits=("test",), quiet=True)
        yield model_run, attack.main(p)
    finally:
        os.chdir(old_cwd)
        if old_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri


def _x(run_id: str) -> dict[str, torch.Tensor]:
    return load_file(tracking.Lineage().artifact(run_id, "adversarial/test.safetensors"))


def test_dgn_stage_logs_losses_phases_generators_and_attack_metrics(dgn_runs):
    _, run_id = dgn_runs
    client = MlflowClient()
    r = client.get_run(run_id)
    m, params = r.data.metrics, r.data.params
    assert params["method"] == "dgn" and params["loss"] == "nce"
    assert (params["alpha"], params["beta"], params["dgn_epochs"]) == ("1", "1", "2")
    assert params["dgn_lr"] == "0.001" and params["dgn_batch_size"] == "16"
    for c in range(10):
        hist = client.get_metric_history(run_id, f"dgn/class{c}_loss")
        assert [h.step for h in hist] == [1, 2]
    for key in ("time/train_s", "time/generate_s", "energy/train_kwh", "energy/generate_kwh"):
        assert key in m, key
    for key in (
        "adversarial_accuracy", "clean_accuracy", "success_rate", "linf_max", "samples_per_s",
    ):  # fmt: skip
        assert f"test/{key}" in m
    assert m["test/linf_max"] <= 0.3 + 1e-6 and m["test/n_adv"] == 360
    arts = {a.path for a in client.list_artifacts(run_id, "generators")}
    assert arts == {"generators/generators.safetensors", "generators/generators.json"}
    assert {a.path for a in client.list_artifacts(run_id, "grid")} == {"grid/test.png"}
    t = _x(run_id)
    assert t["x"].min() >= 0 and t["x"].max() <= 1 and torch.equal(t["index"], torch.arange(360))


def test_generators_run_generates_without_training(dgn_runs):
    _, first = dgn_runs
    p = attack.Params(method="dgn", generators_run=first, splits=("test",), loss="lrp", quiet=True)
    second = attack.main(p)
    r = MlflowClient().get_run(second)
    # the training params are the generators' own, whatever this run was given
    assert (r.data.params["loss"], r.data.params["dgn_epochs"]) == ("nce", "2")
    assert "time/train_s" not in r.data.metrics and "time/load_generators_s" in r.data.metrics
    assert r.data.tags["robust.upstream.generators"] == first
    assert torch.equal(_x(second)["x"], _x(first)["x"])


def test_misclassified_only_keeps_changed_predictions_with_their_indices(dgn_runs):
    model_run, first = dgn_runs
    p = attack.Params(method="dgn", generators_run=first, splits=("test",), quiet=True,
                      misclassified_only=True)  # fmt: skip
    t = _x(attack.main(p))
    from robust.data import load

    model = results.load_model(model_run)
    x = load("digits").test.x
    assert 0 < len(t["index"]) < 360 and torch.equal(t["x"], _x(first)["x"][t["index"]])
    changed = predict(model, t["x"]).argmax(1) != predict(model, x[t["index"]]).argmax(1)
    assert changed.all()


def test_generators_run_must_be_a_dgn_attack_on_the_same_model(dgn_runs):
    pgd_run = attack.main(attack.Params(method="fgsm", splits=("test",), quiet=True))
    with pytest.raises(ConfigError, match="generators_run must be a method=dgn attack run"):
        attack.main(attack.Params(method="dgn", generators_run=pgd_run, quiet=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"norm": "2"}, "method=dgn clips in the L∞ norm only"),
        ({"loss": "lrp", "beta": 2.0}, "the lrp loss takes the weights alpha, but got beta"),
        ({"loss": "gan"}, "loss must be one of"),
        ({"route": "random"}, "route must be one of label, prediction"),
    ],
)
def test_bad_dgn_params_are_one_line_errors(kwargs, message, mlflow_store):
    with pytest.raises(ConfigError, match=message):
        attack.main(attack.Params(method="dgn", **kwargs))
