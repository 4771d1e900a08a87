"""robust.results against a small real study: train, attack, metric, then retrain and evaluate
as children of a parent run (tests/test_results.py)."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pandas as pd
import pytest

from pipelines import attack, evaluate, metric, retrain, train
from robust import results
from robust.errors import ConfigError
from tests.conftest import isolated_store


@dataclass(frozen=True)
class Study:
    train: str
    attack: str
    metric: str
    parent: str  # a hand-made parent run holding retrain and evaluate
    retrain: str
    evaluate: str
    main: str  # a parent that reused `train`: it names it by tag robust.child.train only


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    with isolated_store(root):
        train_id = train.main(train.Params(epochs=3, quiet=True))
        attack_id = attack.main(attack.Params(method="fgsm", quiet=True))
        metric_id = metric.main(metric.Params(metrics=("deepgini", "random"), quiet=True))
        with mlflow.start_run(run_name="study") as parent:
            mlflow.set_tags({"robust.stage": "main", "robust.dataset": "digits"})
            p = retrain.Params(
                config="c2",
                metrics=("deepgini", "random"),
                steps=2,
                seeds=2,
                epochs=1,
                workers=1,  # in this process: the phases below are the same on every machine
                quiet=True,
            )
            retrain_id = retrain.main(p)
            evaluate_id = evaluate.main(evaluate.Params(adaptive=False, quiet=True))
        with mlflow.start_run(run_name="reusing parent") as reusing:
            mlflow.set_tags({"robust.stage": "main", "robust.child.train": train_id})
        main_id = reusing.info.run_id
        yield Study(
            train_id, attack_id, metric_id, parent.info.run_id, retrain_id, evaluate_id, main_id
        )


def test_runs_lists_every_stage_run_with_the_documented_columns(study):
    df = results.runs()
    assert list(df.columns) == list(results.RUN_COLUMNS)
    expected = [study.train, study.attack, study.metric, study.parent, study.retrain]
    assert list(df.run_id[:5]) == expected
    assert set(df.run_id) == {*expected, study.evaluate, study.main}
    row = df.set_index("run_id").loc[study.attack]
    assert (row.stage, row.dataset, row.status) == ("attack", "digits", "FINISHED")
    assert row.upstream == {"model": study.train}
    assert row.params["method"] == "fgsm"
    assert row.duration_s > 0 and row["time/total_s"] > 0 and row["energy/total_kwh"] >= 0
    assert row.end_time > row.start_time and pd.isna(row.parent_run_id)
    assert pd.isna(df.set_index("run_id").loc[study.parent, "time/total_s"])


def test_runs_filters_on_stage_dataset_status_and_parent(study):
    assert list(results.runs(stage="train").run_id) == [study.train]
    assert list(results.runs(stage="train", dataset="digits").run_id) == [study.train]
    assert results.runs(dataset="mnist").empty
    assert list(results.runs(stage="train", status="FAILED").columns) == list(results.RUN_COLUMNS)
    assert results.runs(status="FAILED").empty
    children = results.runs(parent=study.parent)
    assert list(children.run_id) == [study.retrain, study.evaluate]
    assert set(children.parent_run_id) == {study.parent}
    assert list(results.runs(parent=study.parent, stage="evaluate").run_id) == [study.evaluate]
    # a reused stage: the main run names it with robust.child.train
    assert list(results.runs(parent=study.main).run_id) == [study.train]


def test_runs_rejects_a_bad_status_a_quote_and_an_unknown_parent(study):
    with pytest.raises(ConfigError, match=r"status must be one of .*got 'DONE'"):
        results.runs(status="DONE")
    with pytest.raises(ConfigError, match="must not contain quotes"):
        results.runs(stage="x' or '1'='1")
    with pytest.raises(ConfigError, match="no run with id 'nope'"):
        results.runs(parent="nope")


def test_retraining_curves_have_a_row_per_metric_seed_and_step(study):
    curves = results.retraining_curves(study.retrain)
    assert list(curves.columns) == list(results.CURVE_COLUMNS)
    assert not curves.isna().any().any()
    assert set(curves.run_id) == {study.retrain} and set(curves.config) == {"c2"}
    # c2: step 0 is the original model, then steps 1 … steps - 1 and the whole pool
    per_metric_seed = curves.groupby(["metric", "seed"]).size()
    assert set(per_metric_seed.index.get_level_values("metric")) == {"deepgini", "random"}
    assert len(per_metric_seed) == 4 and per_metric_seed.nunique() == 1
    assert len(curves) == 4 * per_metric_seed.iloc[0]
    quantities = curves[["accuracy_clean", "accuracy_combined", "precision_macro"]]
    assert ((quantities >= 0) & (quantities <= 1)).all().all()
    assert curves.fraction.max() == 1.0
    # through the parent run: the same rows
    pd.testing.assert_frame_equal(results.retraining_curves(study.parent), curves)


def test_robustness_matrix_cells_match_the_stage_runs(study):
    matrix = results.robustness_matrix(study.evaluate)
    client = mlflow.MlflowClient()
    original = f"train-{study.train[:8]}"
    column = f"fgsm-{study.attack[:8]}"
    assert matrix.index.name == "model" and list(matrix.index) == [original]
    assert list(matrix.columns) == ["clean", column]
    metrics = client.get_run(study.attack).data.metrics
    assert matrix.loc[original, column] == pytest.approx(metrics["test/accuracy"])
    train_metrics = client.get_run(study.train).data.metrics
    assert matrix.loc[original, "clean"] == pytest.approx(train_metrics["test/accuracy"])
    assert matrix.attrs["labels"]["columns"][column]["run_id"] == study.attack
    assert matrix.attrs["run_id"] == study.evaluate
    pd.testing.assert_frame_equal(results.robustness_matrix(study.parent), matrix)


def test_robustness_matrix_errors(study):
    with pytest.raises(ConfigError, match="no adaptive matrix"):
        results.robustness_matrix(study.evaluate, kind="adaptive")
    with pytest.raises(ConfigError, match="kind must be one of transfer, adaptive"):
        results.robustness_matrix(study.evaluate, kind="both")
    with pytest.raises(ConfigError, match="is a 'train' run with no FINISHED evaluate child"):
        results.robustness_matrix(study.train)
    with pytest.raises(ConfigError, match="no run with id 'nope'"):
        results.robustness_matrix("nope")
    with pytest.raises(ConfigError, match="is a 'attack' run with no FINISHED retrain child"):
        results.retraining_curves(study.attack)


def test_costs_have_a_row_per_phase_and_total(study):
    df = results.costs(study.retrain)
    assert list(df.columns) == list(results.COST_COLUMNS)
    assert list(df.phase) == ["load", "deepgini", "random", "report", "total"]
    assert set(df.run_id) == {study.retrain} and set(df.stage) == {"retrain"}
    assert (df.time_s > 0).all() and (df.energy_kwh >= 0).all() and (df.cpu_percent > 0).all()
    assert (df.peak_rss_mb > 0).all() and df.energy_method.notna().all()
    total = df.set_index("phase").time_s
    assert total["total"] >= total.drop("total").sum() * 0.99
    # a parent: its children's rows, not its own
    both = results.costs(study.parent)
    assert list(dict.fromkeys(both.run_id)) == [study.retrain, study.evaluate]
    assert list(both[both.run_id == study.evaluate].phase) == ["load", "transfer", "total"]
    several = results.costs([study.train, study.attack])
    assert list(dict.fromkeys(several.stage)) == ["train", "attack"]
    with pytest.raises(ConfigError, match="no run with id 'nope'"):
        results.costs("nope")


def test_costs_of_a_tune_run_are_its_own_phases_not_its_trials(study):
    """A tune run's children are its trials (nested runs without phases): its costs are its
    own phases, where a study's parent lists its stage children."""
    from mlflow import MlflowClient

    from robust.tracking import stage

    client = MlflowClient()
    with (
        stage("tune", {"study": "s"}, dataset="digits", force=True) as run,
        run.phase("optimize"),
    ):
        experiment = client.get_run(run.run_id).info.experiment_id
        trial = client.create_run(experiment, tags={"mlflow.parentRunId": run.run_id})
        client.set_terminated(trial.info.run_id, "FINISHED")
    df = results.costs(run.run_id)
    assert list(df.phase) == ["optimize", "total"] and set(df.run_id) == {run.run_id}
    assert (df.time_s > 0).all()
