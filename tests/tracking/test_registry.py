"""The model registry (robust/tracking/registry.py): a train run's model registered once under
its experiment's name, aliases, and the registered version loaded, predicted with
(``mlflow models predict``) and served (``mlflow models serve``) like robust's own model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from pipelines import train
from robust import data, results
from robust.errors import ConfigError
from robust.tracking import labels, registry, stage
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
MLFLOW = str(Path(sys.executable).with_name("mlflow"))
MODEL = "models:/robust-digits@original"


@pytest.mark.parametrize(
    ("run_name", "expected"),
    [
        ("train digits_cnn", "train-digits_cnn"),
        ("advtrain fgsm α=0.5", "advtrain-fgsm-alpha-0_5"),
        ("advtrain trades β=6 online", "advtrain-trades-beta-6-online"),
        ("retrain c2 lsa", "retrain-c2-lsa"),
        ("attack pgd ε=0.3", "attack-pgd-eps-0_3"),
        ("a/b:c%d\"e'f", "a-b-c-d-e-f"),
        ("///", "model"),
    ],
)
def test_logged_model_names_are_what_mlflow_accepts(run_name, expected):
    from mlflow.utils.validation import _validate_logged_model_name

    assert labels.slug(run_name) == expected
    _validate_logged_model_name(expected)


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A one-epoch train run registered (twice: the reused run keeps its version), aliased
    original."""
    from tests.conftest import isolated_store

    root = tmp_path_factory.mktemp("registry")
    with isolated_store(root) as uri:
        params = train.Params(epochs=1, quiet=True, register=True)
        run_id = train.main(params)
        again = train.main(params)  # reused, registered already
        version = registry.set_alias("robust-digits", "original", run_id)
        yield run_id, again, version, uri, root


def test_a_train_run_is_registered_once_under_its_experiment(registered):
    run_id, again, version, _, _ = registered
    assert again == run_id and version == "1"
    client = MlflowClient()
    (only,) = client.search_model_versions("name = 'robust-digits'")
    assert only.run_id == run_id and str(only.version) == "1"
    assert only.tags == {"robust.stage": "train", "robust.run": "train digits_cnn"}
    assert only.description == "train digits_cnn"
    assert client.get_run(run_id).data.tags["robust.mlflow_model"] == "train-digits_cnn"
    assert registry.register(run_id) == "1"  # again: the same version
    assert str(client.get_model_version_by_alias("robust-digits", "original").version) == "1"


def test_a_run_without_a_model_cannot_be_registered(registered):
    with stage("probe", {"n": 1}, dataset="digits") as run:
        pass
    with pytest.raises(ConfigError, match=r"logged no MLflow model to register") as e:
        registry.register(run.run_id)
    assert "\n" not in str(e.value)


def _expected(run_id: str) -> tuple[np.ndarray, np.ndarray]:
    x = data.load("digits", seed=0).test.x[:16]
    with torch.no_grad():
        return x.numpy().astype(np.float32), results.load_model(run_id)(x).numpy()


def _env(uri: str) -> dict[str, str]:
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_RUN_ID", None)
    return env


def test_the_aliased_version_loads_and_predicts_like_robusts_model(registered):
    import mlflow

    run_id, _, _, uri, root = registered
    x, expected = _expected(run_id)
    logits = np.asarray(mlflow.pyfunc.load_model(MODEL).predict(x))
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    # `mlflow models predict` on the registered version, as the README says
    inputs, out = root / "inputs.json", root / "predictions.json"
    inputs.write_text(json.dumps({"inputs": x.tolist()}))
    proc = subprocess.run(
        [MLFLOW, "models", "predict", "-m", MODEL, "-i", str(inputs), "-t", "json",
         "-o", str(out), "--env-manager", "local"],
        cwd=root, env=_env(uri), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    predicted = np.asarray(json.loads(out.read_text())["predictions"])
    np.testing.assert_allclose(predicted, expected, rtol=1e-4, atol=1e-5)


def test_the_aliased_version_is_served(registered):
    """``mlflow models serve`` answers POST /invocations with the model's logits."""
    run_id, _, _, uri, root = registered
    x, expected = _expected(run_id)
    port = free_port()
    server = subprocess.Popen(
        [MLFLOW, "models", "serve", "-m", MODEL, "-h", "127.0.0.1", "-p", str(port),
         "--env-manager", "local"],
        cwd=root, env=_env(uri), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        body = json.dumps({"inputs": x.tolist()}).encode()
        deadline, answer = time.monotonic() + 120, None
        while answer is None:
            assert server.poll() is None, server.stdout.read().decode()[-3000:]
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations", body,
                    {"Content-Type": "application/json"},
                )  # fmt: skip
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = json.loads(response.read())
            except OSError:
                assert time.monotonic() < deadline, "mlflow models serve did not answer in 120 s"
                time.sleep(0.5)
        np.testing.assert_allclose(
            np.asarray(answer["predictions"]), expected, rtol=1e-4, atol=1e-5
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
