"""The study pipeline (pipelines/main.py): one parent run, every stage a child run, a report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipelines import _cli, _study, main
from robust import results
from robust.errors import ConfigError
from tests.conftest import isolated_store

TINY = main.Params(
    epochs=2,
    attacks=("fgsm", "dgn"),
    dgn_losses=("nce",),
    dgn_epochs=1,
    pgd_steps=2,
    metrics=("deepgini", "random"),
    configs=("c2", "c3"),
    retrain_seeds=2,
    retrain_steps=2,
    retrain_epochs=1,
    workers=1,
    apgd_steps=5,
    adaptive_dgn_epochs=1,
    quiet=True,
)
CHILDREN = [
    "train",
    "attack.fgsm",
    "attack.dgn-nce",
    "attack.guided_retraining",
    "metric",
    "retrain.c2",
    "retrain.c3",
    "advtrain.fgsm",
    "advtrain.dgn-nce",
    "advtrain.guided_retraining",
    "advtrain.pgd-at",
    "evaluate",
]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny study, then the same study again (every stage reused)."""
    root = tmp_path_factory.mktemp("study")
    with isolated_store(root):
        first = main.main(TINY)
        again = main.main(TINY)
        yield first, again, root


def _children(run_id: str) -> dict[str, str]:
    tags = MlflowClient().get_run(run_id).data.tags
    return {k.removeprefix("robust.child."): v for k, v in tags.items() if "robust.child." in k}


def test_every_stage_is_a_finished_child_in_study_order(study):
    first, _, _ = study
    client = MlflowClient()
    parent = client.get_run(first)
    assert parent.info.status == "FINISHED" and parent.data.tags["robust.stage"] == "main"
    children = _children(first)
    assert sorted(children) == sorted(CHILDREN)
    for name, run_id in children.items():
        child = client.get_run(run_id)
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == first
        assert child.data.tags["robust.stage"] == name.split(".")[0]
        assert parent.data.metrics[f"time/{name}_s"] > 0
    assert list(results.runs(parent=first).run_id) == [children[n] for n in CHILDREN]
    # the study's experiment is named for it, tagged as model training; every run is named
    exp = client.get_experiment(parent.info.experiment_id)
    assert exp.name == "robust-digits"
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    names = {n: client.get_run(children[n]).info.run_name for n in CHILDREN}
    assert parent.info.run_name == "main digits"
    assert names == {
        "train": "train digits_cnn",
        "attack.fgsm": "attack fgsm ε=0.3",
        "attack.dgn-nce": "attack dgn-nce",
        "attack.guided_retraining": "attack guided_retraining",
        "metric": "metric deepgini,random",
        "retrain.c2": "retrain c2",
        "retrain.c3": "retrain c3",
        "advtrain.fgsm": "advtrain fgsm α=0.5",
        "advtrain.dgn-nce": "advtrain dgn-nce α=0.5",
        "advtrain.guided_retraining": "advtrain guided_retraining α=0.5",
        "advtrain.pgd-at": "advtrain pgd α=0 online",
        "evaluate": "evaluate",
    }
    assert all(
        client.get_run(r).info.experiment_id == exp.experiment_id for r in children.values()
    )
    # the study wires each stage to its upstream runs
    tags = lambda name: client.get_run(children[name]).data.tags  # noqa: E731
    assert tags("metric")["robust.upstream.attack"] == children["attack.guided_retraining"]
    assert tags("retrain.c3")["robust.upstream.metric"] == children["metric"]
    assert client.get_run(children["retrain.c3"]).data.params["config"] == "c3"
    assert tags("advtrain.dgn-nce")["robust.upstream.attack"] == children["attack.dgn-nce"]
    matrix = results.robustness_matrix(first)
    # the original, 3 advtrain, PGD-AT, the best deepgini and random models of c2 and c3
    assert len(matrix) == 9 and len(matrix.columns) == 4  # clean + 3 attacks
    # rows and columns are the runs' names (a retrain row: its run's and the metric's)
    assert list(matrix.index) == [
        "train digits_cnn", "advtrain fgsm α=0.5", "advtrain dgn-nce α=0.5",
        "advtrain guided_retraining α=0.5", "advtrain pgd α=0 online", "retrain c2 deepgini",
        "retrain c2 random", "retrain c3 deepgini", "retrain c3 random",
    ]  # fmt: skip
    assert list(matrix.columns) == ["clean", "fgsm ε=0.3", "dgn-nce", "guided_retraining"]
    adaptive = results.robustness_matrix(first, "adaptive")
    dgn = "dgn-nce"
    assert list(adaptive.columns) == [
        "clean",
        "pgd",
        "autoattack",
        f"adaptive {dgn}",
        "worst case",
    ]
    assert (adaptive["worst case"] <= adaptive["pgd"]).all()
    pgd_at = client.get_run(children["advtrain.pgd-at"]).data.params
    assert (pgd_at["mode"], pgd_at["method"], pgd_at["alpha"]) == ("online", "pgd", "0")
    evaluate = client.get_run(children["evaluate"])
    assert evaluate.data.params["eps"] == "0.3,0.075,0.15,0.225"
    assert "robust.masking" in evaluate.data.tags
    assert set(matrix.attrs["labels"]["columns"]) - {"clean"} == {
        label
        for label, d in matrix.attrs["labels"]["columns"].items()
        if d.get("run_id") in {children[n] for n in CHILDREN if n.startswith("attack.")}
    }
    # adversarial training repeats the original's training configuration
    adv = client.get_run(children["advtrain.fgsm"]).data.params
    assert adv["epochs"] == "2"


def test_the_parent_logs_the_studys_key_results_as_plain_metrics(study):
    first, _, _ = study
    metrics = MlflowClient().get_run(first).data.metrics
    mine = {k: v for k, v in metrics.items() if k.startswith("study/")}
    adaptive = results.robustness_matrix(first, "adaptive")
    dgn = "adaptive dgn-nce"  # the column label; its metric key part: adaptive-dgn-nce
    assert mine["study/robust_accuracy_best/autoattack"] == pytest.approx(
        adaptive["autoattack"].max()
    )
    assert mine["study/robust_accuracy_best/adaptive-dgn-nce"] == pytest.approx(
        adaptive[dgn].max()
    )
    assert mine["study/robust_accuracy_best/worst_case"] == pytest.approx(
        adaptive["worst case"].max()
    )
    transfer = results.robustness_matrix(first)
    assert mine["study/clean_accuracy/original"] == pytest.approx(transfer["clean"].iloc[0])
    assert not any(re.search(r"[0-9a-f]{8}", k) for k in mine)  # no run ids in the keys
    # two budget steps of 50 %: no step within the headline's 30 %, so no retraining keys
    assert not any(k.startswith(("study/c2/", "study/c3/")) for k in mine)


def test_the_studys_models_are_registered_with_aliases_once(study):
    """The original, every advtrain model and each retrain run's best model are versions of
    robust-digits (the study's experiment); the reused study registers nothing twice;
    most-robust is the row with the highest worst-case robust accuracy."""
    first, _, _ = study
    client = MlflowClient()
    children = _children(first)
    versions = client.search_model_versions("name = 'robust-digits'")
    by_run = {v.run_id: v for v in versions}
    assert len(by_run) == len(versions)  # the reused study added no version
    modelled = [c for c in CHILDREN if c == "train" or c.startswith(("advtrain.", "retrain."))]
    assert set(by_run) == {children[c] for c in modelled}
    for c in modelled:
        version = by_run[children[c]]
        run = client.get_run(children[c])
        assert version.tags["robust.run"] == run.info.run_name == version.description
        stage = version.tags["robust.stage"]
        assert stage == c.split(".")[0]
        if stage == "retrain":  # its best model, named for what it is
            best = run.data.tags["robust.best_metric"]
            assert run.data.tags["robust.mlflow_model"] == f"retrain-{c[-2:]}-{best}"
    model = client.get_registered_model("robust-digits")
    original = client.get_model_version_by_alias("robust-digits", "original")
    assert original.run_id == children["train"] and "original" in model.aliases
    most = client.get_model_version_by_alias("robust-digits", "most-robust")
    adaptive = results.robustness_matrix(first, "adaptive")
    pick = results.most_robust(first)
    assert most.run_id == pick["run_id"] and pick["column"] == "worst case"
    assert pick["accuracy"] == adaptive.loc[pick["label"], "worst case"]
    rows = adaptive.attrs["labels"]["rows"]
    plain = [label for label, info in rows.items() if info["stage"] in ("train", "advtrain")]
    assert adaptive.loc[plain, "worst case"].max() <= pick["accuracy"]


def test_every_run_describes_itself_and_the_parent_links_every_child(study):
    first, again, _ = study
    client = MlflowClient()
    children = _children(first)
    notes = {c: client.get_run(r).data.tags.get("mlflow.note.content", "") for c, r in
             children.items()}  # fmt: skip
    assert all(notes.values()), [c for c, n in notes.items() if not n]
    assert notes["train"].startswith("**train digits_cnn** on digits")
    assert "Test accuracy **" in notes["train"]
    assert "success rate **" in notes["attack.fgsm"]
    assert "Best model: **" in notes["retrain.c2"]
    assert "Most robust under *worst case*: **" in notes["evaluate"]
    for run_id in (first, again):  # the reused study says the same
        parent = client.get_run(run_id)
        text = parent.data.tags["mlflow.note.content"]
        assert text.startswith("**Study on digits**: 12 stages")
        assert "Original model: clean test accuracy **" in text
        assert "Most robust model: **" in text and "(alias `most-robust`)" in text
        # the attacks named as the matrices label them, not as metric keys
        assert "per adaptive attack: pgd " in text and ", worst case " in text
        assert "adaptive dgn-nce " in text and "worst_case" not in text
        for child in children.values():
            experiment = client.get_run(child).info.experiment_id
            view = "?workflowType=machine_learning"  # the UI's model-training view
            assert f"(#/experiments/{experiment}/runs/{child}{view})" in text


def test_every_stage_logs_the_datasets_it_used_with_one_digest_per_set(study):
    first, _, _ = study
    client = MlflowClient()
    inputs = {
        c: {(d.dataset.name, d.tags[0].value): d.dataset.digest
            for d in client.get_run(r).inputs.dataset_inputs}
        for c, r in _children(first).items()
    }  # fmt: skip
    assert all(inputs.values()), [c for c, i in inputs.items() if not i]
    assert set(inputs["train"]) == {
        ("digits/train", "training"), ("digits/val", "validation"), ("digits/test", "evaluation")
    }  # fmt: skip
    test = inputs["train"][("digits/test", "evaluation")]
    for c in ("attack.fgsm", "evaluate", "advtrain.fgsm", "retrain.c2"):
        assert inputs[c][("digits/test", "evaluation")] == test, c  # the same inputs
    fgsm = {k: v for k, v in inputs["attack.fgsm"].items() if k[1] == "adversarial"}
    assert {name.rsplit("/", 1)[1] for name, _ in fgsm} == {"train", "test"}
    used = inputs["advtrain.fgsm"]  # the attack run's sets, under the attack run's name
    assert all(used[k] == v for k, v in fgsm.items())
    assert len(inputs["evaluate"]) == 1 + sum(c.startswith("attack.") for c in CHILDREN)


def test_an_identical_study_reuses_every_stage(study):
    first, again, _ = study
    assert again != first
    assert _children(again) == _children(first)
    assert MlflowClient().get_run(again).data.tags["robust.stage"] == "main"


def _report(run_id: str, root: Path) -> Path:
    return Path(MlflowClient().download_artifacts(run_id, "", str(root / run_id)))


def test_the_report_has_every_section_table_and_figure(study):
    first, again, root = study
    out = _report(first, root)
    md = (out / "report.md").read_text()
    for heading in (
        "## Stages",
        "## Guided retraining",
        "### Metric ranking",
        "### Transfer robust accuracy",
        "### Adaptive robust accuracy",
        "### Per class robust accuracy",
        "### Robust accuracy against ε",
        "### Gradient-masking checks",
        "## Generation time: DGN vs PGD",
        "## Time and energy per stage",
    ):
        assert heading in md
    figures = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert set(figures) == {
        *(
            f"figures/retraining_{c}{e}.png"
            for c in ("c2", "c3")
            for e in ("", "_clean", "_adversarial")
        ),
        "figures/metric_ranking.png",
        "figures/transfer_matrix.png",
        "figures/adaptive_matrix.png",
        "figures/per_class_matrix.png",
        "figures/eps_curve.png",
        "figures/generation_time.png",
        "figures/stage_costs.png",
    }
    for f in figures:
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures)
    assert 'src="figures' not in html  # self-contained
    # every stage's run id, the ranking with CIs, and the matrix values as the store has them
    for run_id in _children(first).values():
        assert run_id in md
    assert re.search(r"\| c2 \| 1 \| (DeepGini|Random) \| 0\.\d{4} \[0\.\d{4}, [01]\.\d{4}\]", md)
    adaptive = results.robustness_matrix(first, "adaptive")
    row = adaptive.index[0]
    assert f"| {row} | {100 * adaptive.loc[row, 'clean']:.1f} [" in md  # with its interval
    assert "| dgn-nce |" in md and "| fgsm |" in md  # generation time rows
    # the second study reused everything and says so
    md_again = (_report(again, root) / "report.md").read_text()
    assert "| train | " in md_again and "| here |" not in md_again and "| reused |" in md_again


def test_bad_parameters_fail_before_any_stage_runs(mlflow_store, capsys):
    with pytest.raises(
        ConfigError, match=r"configs must be one of c1, c2, c3, but got configs='c4'"
    ):
        main.Params(configs=("c4",))
    with pytest.raises(ConfigError, match="dgn_losses must be one of"):
        main.Params(dgn_losses=("nope",))
    code = _cli.run(main.main, main.Params, ["--retrain_steps", "0"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: retrain_steps must be at least 1, but got retrain_steps=0"]
    # a child stage's own check fires when the plan is built, before the parent run starts
    with pytest.raises(ConfigError, match="size must be at least 1, but got size=0"):
        _study.plan(main.Params(size=0))
    assert results.runs(status=None).empty


ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHILDREN = [
    "train",
    *("attack.fgsm", "attack.pgd", "attack.dgn-nce", "attack.dgn-lrp", "attack.dgn-susp"),
    "attack.guided_retraining",
    "metric",
    *("retrain.c1", "retrain.c2", "retrain.c3"),
    *("advtrain.fgsm", "advtrain.pgd", "advtrain.dgn-nce", "advtrain.dgn-lrp"),
    *("advtrain.dgn-susp", "advtrain.guided_retraining", "advtrain.pgd-at"),
    "evaluate",
]


@pytest.mark.slow
def test_the_default_study_on_digits(mlflow_store, tmp_path):
    """`python -m pipelines.main` with every default (the README's `mlflow run .`): 19 stages,
    11–25 minutes on 2 CPU cores. Run with `pytest -m slow`."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_store, PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_RUN_ID", None)
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.main", "--quiet", "true"],  # quiet: no progress bars
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    (parent,) = results.runs(stage="main").run_id
    client = MlflowClient()
    assert client.get_run(parent).data.params["dataset"] == "digits"
    children = _children(parent)
    assert sorted(children) == sorted(DEFAULT_CHILDREN)
    for name, run_id in children.items():
        child = client.get_run(run_id)
        assert child.info.status == "FINISHED", name
        assert child.data.tags["mlflow.parentRunId"] == parent, name
    assert set(results.runs(parent=parent).run_id) == set(children.values())
    assert results.runs(status="FAILED").empty
    transfer = results.robustness_matrix(parent)
    adaptive = results.robustness_matrix(parent, "adaptive")
    # the original, 6 advtrain, PGD-AT, 3 configs × 6 metrics' best models; clean + 6 attacks
    assert transfer.shape == (26, 7)
    # clean, pgd, autoattack, 3 adaptive DGNs, worst case
    assert adaptive.shape == (26, 7)
    out = _report(parent, tmp_path)
    md = (out / "report.md").read_text()
    for run_id in children.values():
        assert run_id in md
    assert "### Adaptive robust accuracy" in md and "### Configuration c1" in md
    assert (out / "report.html").exists()
    assert (out / "figures" / "retraining_c3.png").exists()
