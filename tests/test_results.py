"""robust.results against a small real study: train, attack, metric, then retrain and evaluate
as children of a parent run (tests/test_results.py)."""

from __future__ import annotations

import re

import mlflow
import pandas as pd
import pytest
import torch

from robust import data, results
from robust.errors import ConfigError
from tests import study_store
from tests.conftest import isolated_store


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    built = study_store.build(tmp_path_factory)
    with isolated_store(built.root):
        yield built


def test_runs_lists_every_stage_run_with_the_documented_columns(study):
    df = results.runs()
    assert list(df.columns) == list(results.RUN_COLUMNS)
    expected = [study.train, study.attack, study.metric, study.parent, study.retrain]
    assert list(df.run_id[:5]) == expected
    assert set(df.run_id) == {*expected, study.evaluate, study.main, study.named}
    assert not set(df.run_id) & set(study.pointers.values())  # reuse pointers are not listed
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
    # children named through reuse pointers: the pointers' targets
    assert list(results.runs(parent=study.named).run_id) == [
        study.train,
        study.attack,
        study.metric,
        study.retrain,
        study.evaluate,
    ]


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
    original = "train digits_cnn"  # labels are the runs' names
    column = "fgsm ε=0.3"
    assert matrix.index.name == "model" and list(matrix.index) == [original]
    assert list(matrix.columns) == ["clean", column]
    metrics = client.get_run(study.attack).data.metrics
    assert matrix.loc[original, column] == pytest.approx(metrics["test/adversarial_accuracy"])
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
    assert list(df.phase) == ["load", "deepgini", "random", "report", "save", "total"]
    assert set(df.run_id) == {study.retrain} and set(df.stage) == {"retrain"}
    assert (df.time_s > 0).all() and (df.energy_kwh >= 0).all() and (df.cpu_percent >= 0).all()
    # CPU is guaranteed only where real work ran (a short report phase may read 0 when loaded)
    fits = df.set_index("phase").loc[["deepgini", "random", "total"]]
    assert (fits.cpu_percent * fits.time_s > 0).all()
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


def test_every_function_follows_a_reuse_pointer(study):
    """Pointers made as `mlflow run` makes them (a FINISHED run tagged robust.reused_from, no
    data of its own): every function given one answers with its target's data."""
    client = mlflow.MlflowClient()
    targets = {"train": study.train, "retrain": study.retrain, "evaluate": study.evaluate}
    for stage, target in targets.items():
        pointer = client.get_run(study.pointers[stage])
        assert pointer.info.status == "FINISHED"
        assert pointer.data.tags["robust.reused_from"] == target
        assert pointer.data.tags["robust.stage"] == stage
        assert "time/total_s" not in pointer.data.metrics  # the data are the target's
        assert not client.list_artifacts(pointer.info.run_id)
    p = study.pointers
    x = data.load("digits", seed=0).test.x[:32]
    with torch.no_grad():
        torch.testing.assert_close(
            results.load_model(p["train"])(x), results.load_model(study.train)(x)
        )
        torch.testing.assert_close(
            results.load_model(p["retrain"], "best/deepgini")(x),
            results.load_model(study.retrain, "best/deepgini")(x),
        )
    cost = results.costs(p["train"])
    assert set(cost.run_id) == {study.train}
    pd.testing.assert_frame_equal(cost, results.costs(study.train))
    curves = results.retraining_curves(p["retrain"])
    assert set(curves.run_id) == {study.retrain}
    pd.testing.assert_frame_equal(curves, results.retraining_curves(study.retrain))
    matrix = results.robustness_matrix(p["evaluate"])
    assert matrix.attrs["run_id"] == study.evaluate
    pd.testing.assert_frame_equal(matrix, results.robustness_matrix(study.evaluate))
    # a parent whose robust.child.* tags name pointers: their targets
    stages = [study.train, study.attack, study.metric, study.retrain, study.evaluate]
    assert list(dict.fromkeys(results.costs(study.named).run_id)) == stages
    pd.testing.assert_frame_equal(results.retraining_curves(study.named), curves)
    pd.testing.assert_frame_equal(results.robustness_matrix(study.named), matrix)


def test_write_study_report_rebuilds_the_report_of_a_parent(study, tmp_path):
    out = tmp_path / "report"
    files = results.write_study_report(study.named, out)
    names = [f.relative_to(out).as_posix() for f in files]
    assert names[:2] == ["report.md", "report.html"]
    assert set(names[2:]) == {
        "figures/retraining_c2.png",
        "figures/retraining_c2_clean.png",
        "figures/retraining_c2_adversarial.png",
        "figures/metric_ranking.png",
        "figures/transfer_matrix.png",
        "figures/generation_time.png",
        "figures/stage_costs.png",
    }
    for f in files[2:]:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert set(re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)) == set(names[2:])
    for heading in (
        "# robust study: digits",
        "## Stages",
        "## Guided retraining",
        "### Configuration c2",
        "### Metric ranking",
        "## Attack × defence",
        "### Transfer robust accuracy",
        "## Generation time: DGN vs PGD",
        "## Time and energy per stage",
    ):
        assert re.search(rf"^{re.escape(heading)}($|:)", md, re.M), heading
    assert "Adaptive robust accuracy" not in md  # evaluate ran with adaptive=false
    # the stages' run ids: the pointers' targets, never the pointers
    assert f"Parent run {study.named}." in md
    for run_id in (study.train, study.attack, study.metric, study.retrain, study.evaluate):
        assert run_id in md
    for pointer in study.pointers.values():
        assert pointer not in md
    # numbers as the store has them
    client = mlflow.MlflowClient()
    matrix = results.robustness_matrix(study.evaluate)
    original = "train digits_cnn"
    train_accuracy = client.get_run(study.train).data.metrics["test/accuracy"]
    assert matrix.loc[original, "clean"] == pytest.approx(train_accuracy)
    cells = pd.DataFrame(matrix.attrs["cells"])
    cells = cells[cells["model"] == original]
    row = f"| {original} | " + " | ".join(
        f"{100 * a:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        for a, lo, hi in zip(cells["accuracy"], cells["ci_low"], cells["ci_high"], strict=True)
    ) + " |"  # fmt: skip
    assert row in md  # each cell with its Wilson interval
    assert list(cells["accuracy"]) == list(matrix.loc[original])
    train_s = client.get_run(study.train).data.metrics["time/total_s"]
    assert f"| train | reused | {round(train_s, 1)} | " in md  # computed by earlier runs
    assert "| here |" not in md
    assert re.search(r"\| c2 \| 1 \| (DeepGini|Random) \| 0\.\d{4} \[-?\d\.\d{4}, \d\.\d{4}\]", md)
    # two steps of 50 %: no budget ≤ 30 %, so no comparison with random (see the test below)
    assert "no budget ≤ 30% of the pool" in md and "Against random, per endpoint" not in md
    assert "speak about this one original model" in md and "Holm" in md
    assert "| fgsm |" in md  # generation time row
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 7 and 'src="figures' not in html
    assert study.retrain in html and "<table" in html
    # run ids link to their runs: relative UI addresses in Markdown (MLflow's viewer follows
    # them); report.html (shown sandboxed there) links only when the UI's address is known
    experiment = client.get_run(study.train).info.experiment_id
    url = f"#/experiments/{experiment}/runs/{study.train}?workflowType=machine_learning"
    assert f"| train | [{study.train}]({url}) |" in md
    assert "<a href" not in html


def test_report_links_and_figures_under_a_known_ui_address(study, tmp_path, monkeypatch):
    """With the UI's address known (``ROBUST_UI_URL``, or a server's tracking URI), report.md
    logged as the run's artifacts shows the server's figures (MLflow's viewer shows no image at
    a relative path) and both reports link run ids absolutely."""
    monkeypatch.setenv("ROBUST_UI_URL", "http://ui.example:5000/")
    out = tmp_path / "report"
    results.write_study_report(study.named, out, logged=True)
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert len(images) == 7
    assert all(
        i.startswith("http://ui.example:5000/get-artifact?path=figures%2F")
        and i.endswith(f"&run_uuid={study.named}")
        for i in images
    ), images
    experiment = mlflow.MlflowClient().get_run(study.train).info.experiment_id
    url = f"http://ui.example:5000/#/experiments/{experiment}/runs/{study.train}"
    assert f"[{study.train}]({url}?workflowType=machine_learning)" in md
    assert (
        f'<a href="{url}?workflowType=machine_learning" target="_blank">{study.train}</a>' in html
    )


def test_the_study_report_holm_adjusts_over_every_configuration_and_metric():
    """Two configurations × two metrics, each with p = .0351 alone (t = 5.196 on 2 df): each
    run's family of two gives .0702, the study's family of four .1404; neither beats random."""
    from robust.results.report import _endpoint_rows, _ranking_rows, _study_tests
    from robust.retraining import paired_t

    gain = [0.08, 0.12, 0.16]
    p = float(paired_t(gain).p_value)
    head = {"per_seed": gain, "mean": 0.12, "ci_low": 0.02, "ci_high": 0.22, "n": 3}
    head |= {"p_value": p, "p_holm": 2 * p, "verdict": "inconclusive"}
    auc = {"mean": 0.7, "ci_low": 0.6, "ci_high": 0.8, "n": 3}
    metric = {"auc": auc, "best_accuracy": auc}
    docs = {
        c: {"baseline": "random", "margin": 0.01, "headline": {"lsa": head, "dsa": head},
            "metrics": {"lsa": metric, "dsa": metric, "random": metric}}
        for c in ("c1", "c2")
    }  # fmt: skip
    tests = _study_tests(docs)
    assert set(tests) == {("combined", c, m) for c in ("c1", "c2") for m in ("lsa", "dsa")}
    for t in tests.values():
        assert t["p_value"] == pytest.approx(0.0350987, abs=1e-6)
        assert t["p_holm_run"] == pytest.approx(2 * p)
        assert t["p_holm_study"] == pytest.approx(4 * p) and t["verdict"] == "inconclusive"
    one = _study_tests({"c2": {**docs["c2"], "headline": {"lsa": head}}})
    assert one["combined", "c2", "lsa"]["verdict"] == "beats random"  # a family of one
    rows = _ranking_rows("c1", docs["c1"], tests)
    assert list(rows["verdict"]) == ["inconclusive", "inconclusive", ""]  # random: baseline
    assert list(rows["p (Holm)"])[:2] == [round(4 * p, 4)] * 2
    assert list(rows["AUC clean"]) == [""] * 3  # a run from before the endpoints
    table = _endpoint_rows(docs, tests)
    assert list(table.columns) == [
        "config", "metric", "endpoint", "Δ vs random", "p", "p (Holm, run)",
        "p (Holm, study)", "TOST p (Holm, study)", "verdict",
    ]  # fmt: skip
    assert list(table["metric"]) == ["LSA", "DSA"] * 2
    assert table["Δ vs random"][0] == "0.1200 [0.0200, 0.2200]"


def test_auto_look_ups_see_past_a_newer_reuse_pointer(study):
    """A reused `mlflow run -e train` leaves a pointer as the newest train-tagged run; `auto`
    look-ups must find the run it points to, not give up."""
    from robust.tracking import Lineage

    # the study's last run tagged robust.stage=train is the pointer to study.train
    assert Lineage("digits").latest("train") == study.train
