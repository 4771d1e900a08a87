"""A study against a real ``mlflow server`` on PostgreSQL with proxied artifacts (issue 14).

Every stage, reuse, ``robust.results`` (models, curves, matrices, costs) and the report run
unchanged with ``MLFLOW_TRACKING_URI=http://…``; artifacts go through the server
(``mlflow-artifacts:``) and land in its ``--artifacts-destination``, never on the client's disk.
"""

from __future__ import annotations

import os

import mlflow
import pytest
from mlflow import MlflowClient

from pipelines import main
from robust import results
from robust.tracking import lineage
from tests.pipelines.test_main import CHILDREN, TINY


@pytest.fixture(scope="module")
def study(mlflow_server, tmp_path_factory):
    """The tiny study twice over HTTP (the second reuses every stage), from a working directory
    that must stay empty: nothing is written on the client's disk."""
    client_dir = tmp_path_factory.mktemp("client")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(client_dir)
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mp.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        mlflow.set_tracking_uri(mlflow_server.uri)
        mlflow.set_experiment("server-study")
        lineage.forget()
        first = main.main(TINY)
        again = main.main(TINY)
        yield first, again, client_dir
        mlflow.set_experiment(experiment_id="0")


def _children(run_id: str) -> dict[str, str]:
    tags = MlflowClient().get_run(run_id).data.tags
    return {k.removeprefix("robust.child."): v for k, v in tags.items() if "robust.child." in k}


def test_every_stage_finishes_over_http_with_proxied_artifacts(study, mlflow_server):
    first, _, client_dir = study
    client = MlflowClient()
    children = _children(first)
    assert sorted(children) == sorted(CHILDREN)
    for run_id in children.values():
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    train = children["train"]
    stored = list(mlflow_server.artifacts.rglob("model.safetensors"))
    assert any(train in str(p) for p in stored), "artifacts land on the server's destination"
    assert not (client_dir / "mlruns").exists() and not (client_dir / "mlartifacts").exists()
    assert os.listdir(client_dir) == []


def test_the_second_study_reuses_every_stage_over_http(study):
    first, again, _ = study
    assert _children(again) == _children(first)


def test_results_and_report_read_over_http(study, tmp_path):
    first, _, _ = study
    children = _children(first)
    model = results.load_model(children["train"])
    assert model.spec["dataset"] == "digits"
    curves = results.retraining_curves(first)
    assert set(curves.config) == {"c2", "c3"} and curves.accuracy_combined.between(0, 1).all()
    matrix = results.robustness_matrix(first)
    # the original, 3 advtrain, PGD-AT, the best deepgini and random models of c2 and c3
    assert matrix.shape[0] == 9 and "clean" in matrix.columns
    cost = results.costs(first)
    assert set(cost.run_id) == set(children.values())
    written = results.write_study_report(first, tmp_path)
    assert (tmp_path / "report.md").read_text().count(children["train"]) >= 1
    assert all(p.exists() for p in written)
