"""The retrain stage end to end on digits (pipelines/retrain.py), with one-epoch trainings."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

from pipelines import _cli, attack, metric, retrain, train
from robust import data, models, retraining, tracking
from robust.errors import ConfigError
from robust.training import defaults_for
from tests.conftest import experiment_ids, isolated_store

ROOT = Path(__file__).resolve().parents[2]
N_TRAIN = 1078  # digits' train split; FGSM attacks every input, so the pool holds 2 × 1078
FAST = {"epochs": 1, "quiet": True}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One store: a 3-epoch train run, FGSM on train and test, and four metrics' orders (the
    surprise adequacies only cost time here)."""
    root = tmp_path_factory.mktemp("store")
    with isolated_store(root):
        model_run = train.main(train.Params(epochs=3, quiet=True))
        attack_run = attack.main(attack.Params(method="fgsm", quiet=True))
        scores = metric.Params(metrics=("nc", "deepgini", "entropy", "random"), quiet=True)
        yield model_run, attack_run, metric.main(scores)


@pytest.fixture(scope="module")
def c2(runs) -> str:
    """c2 with three metrics, four budget steps (the first ≤ 30 % of the pool), two seeds."""
    p = retrain.Params(metrics=("entropy", "random", "deepgini"), steps=4, seeds=2, **FAST)
    return retrain.main(p)  # metric_run=auto: the fixture's


def _artifact(run_id: str, path: str) -> Path:
    return tracking.Lineage().artifact(run_id, path)


def _table(run_id: str, name: str) -> list[dict[str, str]]:
    with _artifact(run_id, f"tables/{name}.csv").open() as f:
        return list(csv.DictReader(f))


def _newest_retrain_run() -> mlflow.entities.Run:
    (run,) = MlflowClient().search_runs(
        experiment_ids(MlflowClient()),
        "tags.`robust.stage` = 'retrain'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    return run


def test_c2_logs_one_point_per_step_and_seed_from_the_original(runs, c2):
    client = MlflowClient()
    r = client.get_run(c2)
    budgets = retraining.budgets(2 * N_TRAIN, 4).tolist()
    assert r.data.params["budget_sizes"] == ",".join(map(str, budgets))
    assert r.data.params["metrics"] == "deepgini,entropy,random"  # guidance.METRICS order
    assert r.data.params["metric_run"] == runs[2] and r.data.params["epochs"] == "1"
    assert r.data.params["workers"] == str(retraining.auto_workers())  # auto, resolved
    assert r.data.tags["robust.upstream.metric"] == runs[2]
    original = r.data.metrics["original/accuracy_combined"]
    for m in ("deepgini", "entropy", "random"):
        for s in (0, 1):
            for q in retraining.QUANTITIES:
                history = client.get_metric_history(c2, f"{m}/seed{s}/{q}")
                assert sorted(h.step for h in history) == [0, *budgets], (m, s, q)
                assert all(0 <= h.value <= 1 for h in history)
            acc = client.get_metric_history(c2, f"{m}/seed{s}/accuracy_combined")
            assert next(h.value for h in acc if h.step == 0) == original
            fit = client.get_metric_history(c2, f"{m}/seed{s}/fit_s")
            assert sorted(h.step for h in fit) == budgets  # no training at row 0
        for q in ("combined", "clean", "adversarial"):
            mean = client.get_metric_history(c2, f"{m}/accuracy_{q}_mean")
            assert sorted(h.step for h in mean) == [0, *budgets], q
        assert f"time/{m}_s" in r.data.metrics and f"energy/{m}_kwh" in r.data.metrics
        for key in retraining.SUMMARY_KEYS:  # with auc_clean, auc_adversarial
            for b in ("mean", "ci_low", "ci_high"):
                assert f"{m}/{key}_{b}" in r.data.metrics, (m, key, b)


def test_the_last_step_trains_every_metric_on_the_same_pool(c2):
    rows = [r for r in _table(c2, "curves") if r["step"] == "4"]
    assert len(rows) == 3 * 2 and {r["n_inputs"] for r in rows} == {str(2 * N_TRAIN)}
    for seed in ("0", "1"):  # same set, same seed: the same model whatever the metric
        assert len({r["accuracy_combined"] for r in rows if r["seed"] == seed}) == 1


def test_the_summary_says_whether_each_metric_beats_random(c2, caplog):
    doc = json.loads(_artifact(c2, "summary.json").read_text())
    assert set(doc["headline"]) == {"deepgini", "entropy"} and doc["headline_note"] is None
    allowed = {"beats random", "worse than random", "equivalent to random", "inconclusive"}
    m = MlflowClient().get_run(c2).data.metrics
    for name, h in doc["headline"].items():
        assert h["verdict"] in allowed and h["n"] == 2 and h["n_inputs"] == [539]
        assert h["ci_low"] <= h["mean"] <= h["ci_high"]
        assert m[f"headline/{name}_vs_random_mean"] == pytest.approx(h["mean"])
        assert f"headline/{name}_vs_random_verdict" in m
    p = {n: h["p_value"] for n, h in doc["headline"].items()}  # one family: this run's metrics
    holm = dict(zip(p, retraining.holm(list(p.values())), strict=True))
    for endpoint, tail in (("combined", ""), ("clean", "_clean"), ("adversarial", "_adversarial")):
        heads = doc["headline" if endpoint == "combined" else f"headline_{endpoint}"]
        assert set(heads) == {"deepgini", "entropy"}
        for name, h in heads.items():
            assert h["verdict"] in allowed and h["quantity"] == f"accuracy_{endpoint}"
            assert h["margin"] == 0.01 and 0 <= h["p_value"] <= h["p_holm"] <= 1
            for field in ("p_value", "p_holm", "p_tost", "p_tost_holm", "verdict"):
                assert f"headline/{name}_vs_random{tail}_{field}" in m, (endpoint, field)
    assert {n: h["p_holm"] for n, h in doc["headline"].items()} == pytest.approx(holm)
    for name, s in doc["metrics"].items():
        assert s["time_s"] > 0 and s["energy_kwh"] >= 0, name
        assert s["best_accuracy"]["n"] == 2
    md = _artifact(c2, "summary.md").read_text()
    assert md.startswith("# Guided retraining: digits, c2\n")
    for h in doc["headline"].values():
        assert h["line"] in md and "at ≤ 30% of the pool (539 inputs)" in h["line"]
    assert "speak about this one original model" in md and "equivalence" in md


def test_figures_tables_and_best_models(runs, c2):
    arts = {a.path for a in MlflowClient().list_artifacts(c2, "figures")}
    assert arts == {
        f"figures/digits_c2_accuracy{e}.{x}"
        for e in ("", "_clean", "_adversarial")
        for x in ("png", "svg")
    }
    rows = _table(c2, "curves")
    assert len(rows) == 3 * 2 * 5 and list(rows[0])[:5] == [
        "metric",
        "original",
        "seed",
        "step",
        "n_inputs",
    ]
    assert [r["metric"] for r in _table(c2, "summary")] == ["deepgini", "entropy", "random"]
    best = json.loads(_artifact(c2, "best/best.json").read_text())
    assert set(best) == {"deepgini", "entropy", "random"}
    adv = load_file(_artifact(runs[1], "adversarial/test.safetensors"))
    digits = data.load("digits", seed=0)
    # FGSM attacked train and test only: the best is chosen on the clean validation split
    sets = retraining.EvalSets(digits.test, data.Split(adv["x"], adv["y"]), digits.val)
    assert MlflowClient().get_run(c2).data.params["select_on"] == "val_clean"
    for name, point in best.items():
        trained = [r for r in rows if r["metric"] == name and r["step"] != "0"]
        assert point["step"] >= 1
        assert point["val_accuracy"] == max(float(r["val_accuracy"]) for r in trained)
        model = models.load(_artifact(c2, f"best/{name}"))  # safetensors + spec.json
        scores = retraining.evaluate_model(model, sets, 10)
        quantities = (*retraining.QUANTITIES, retraining.SELECTION)
        assert scores == pytest.approx({q: point[q] for q in quantities})


def test_the_best_step_is_chosen_on_clean_and_adversarial_validation(tmp_path, caplog):
    """An attack run with an adversarial val set: select_on=auto chooses on it, and every
    reported best is the test accuracy at each seed's best validation step."""
    with isolated_store(tmp_path):
        train.main(train.Params(epochs=2, quiet=True))
        attack_run = attack.main(
            attack.Params(method="fgsm", splits=("train", "val", "test"), quiet=True)
        )
        metric_run = metric.main(metric.Params(metrics=("deepgini", "random"), quiet=True))
        run_id = retrain.main(
            retrain.Params(metrics=("deepgini", "random"), steps=3, seeds=2, **FAST)
        )
        assert "no adversarial val set" not in caplog.text
        assert MlflowClient().get_run(run_id).data.params["select_on"] == "val"
        rows = _table(run_id, "curves")
        doc = json.loads(_artifact(run_id, "summary.json").read_text())
        n_val = len(data.load("digits", seed=0).val)
        n_adv = len(load_file(_artifact(attack_run, "adversarial/val.safetensors"))["y"])
        assert doc["selected_on"] == "validation" and n_adv == n_val
        assert doc["context"]["best step chosen on"] == (
            f"{2 * n_val} validation inputs, clean followed by adversarial"
        )
        for name in ("deepgini", "random"):
            at_best = []
            for seed in ("0", "1"):
                mine = [r for r in rows if r["metric"] == name and r["seed"] == seed]
                best = max(mine, key=lambda r: float(r["val_accuracy"]))  # first of ties
                at_best.append(float(best["accuracy_combined"]))
            assert doc["metrics"][name]["best_accuracy"]["mean"] == pytest.approx(sum(at_best) / 2)
        # asking for the adversarial val set of an attack run without one: a one-line error
        fgsm = attack.main(attack.Params(method="fgsm", quiet=True))
        no_val = metric.main(metric.Params(attack_run=fgsm, metrics=("random",), quiet=True))
        assert no_val != metric_run
        with pytest.raises(
            ConfigError, match=r"has no adversarial val set .* \(-P splits=val,train,test\)"
        ):
            retrain.main(
                retrain.Params(metric_run=no_val, metrics=("random",), select_on="val", **FAST)
            )


def test_c3_retrains_on_adversarial_inputs_only(runs):
    p = retrain.Params(
        metric_run=runs[2], config="c3", metrics=("random", "nc"), steps=2, seeds=1, **FAST
    )
    run_id = retrain.main(p)
    r = MlflowClient().get_run(run_id)
    assert r.data.params["pool_size"] == str(N_TRAIN)
    assert r.data.params["budget_sizes"] == "539,1078"
    rows = _table(run_id, "curves")
    assert all(r["n_adversarial"] == r["n_inputs"] for r in rows)
    assert {r["step"] for r in rows} == {"0", "1", "2"}
    doc = json.loads(_artifact(run_id, "summary.json").read_text())
    assert doc["headline"] == {} and "no budget step is within 30%" in doc["headline_note"]


def test_budgets_seed_trains_the_seeds_sets(runs, monkeypatch, caplog):
    """digits has no seed protocol: give it one, with another pool size than this one's."""
    seed = {c: retraining.SeedBudget(400, 3, 1000) for c in retraining.CONFIGS}
    monkeypatch.setitem(retraining.SEED_BUDGETS, "digits", seed)
    p = retrain.Params(
        metric_run=runs[2], config="c3", metrics=("random",), budgets="seed", seeds=1, **FAST
    )
    run_id = retrain.main(p)
    params = MlflowClient().get_run(run_id).data.params
    assert params["budget_sizes"] == "400,800,1078" and params["steps"] == "3"
    history = MlflowClient().get_metric_history(run_id, "random/seed0/accuracy_combined")
    assert sorted(h.step for h in history) == [0, 400, 800, 1078]
    assert "budgets=seed on a pool of 1078 inputs, not the seed's" in caplog.text


def test_c1_has_no_row_0_and_warm_start_chains(runs):
    p = retrain.Params(
        metric_run=runs[2],
        config="c1",
        metrics=("nc", "random"),
        steps=2,
        seeds=1,
        warm_start=True,
        headline_budget=0.5,
        **FAST,
    )
    run_id = retrain.main(p)
    r = MlflowClient().get_run(run_id)
    assert r.data.params["warm_start"] == "true"
    assert {row["step"] for row in _table(run_id, "curves")} == {"1", "2"}
    history = MlflowClient().get_metric_history(run_id, "nc/seed0/accuracy_combined")
    assert sorted(h.step for h in history) == [1078, 2156]
    doc = json.loads(_artifact(run_id, "summary.json").read_text())
    assert doc["headline"]["nc"]["verdict"] == "no CI with one seed"


def test_workers_change_neither_the_points_nor_the_best_models(runs, monkeypatch):
    """Two worker processes log what one process logs (with one torch thread everywhere: float
    rounding may depend on the thread count)."""
    monkeypatch.setattr(retraining._parallel, "cores", lambda: 2)  # 1 thread per worker
    p = retrain.Params(
        metric_run=runs[2], metrics=("entropy", "random"), steps=2, seeds=2, workers=1, **FAST
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = retrain.main(p)
    finally:
        torch.set_num_threads(before)
    two = retrain.main(dataclasses.replace(p, workers=2))
    assert two != one  # workers is a param: another value is another run
    client = MlflowClient()
    r1, r2 = client.get_run(one), client.get_run(two)
    assert (r1.data.params["workers"], r2.data.params["workers"]) == ("1", "2")
    assert "time/workers_s" in r2.data.metrics and "time/workers_s" not in r1.data.metrics

    def without_fit_s(rows):
        return [{k: v for k, v in row.items() if k != "fit_s"} for row in rows]

    assert without_fit_s(_table(two, "curves")) == without_fit_s(_table(one, "curves"))
    best = [json.loads(_artifact(run, "best/best.json").read_text()) for run in (one, two)]
    assert [without_fit_s(b.values()) for b in best] == [without_fit_s(best[0].values())] * 2
    for m in ("entropy", "random"):
        w1, w2 = (
            load_file(_artifact(run, f"best/{m}") / "model.safetensors") for run in (one, two)
        )
        assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)


def test_bad_workers_exit_2_with_one_line(capsys):
    assert _cli.run(retrain.main, retrain.Params, ["--workers", "0"]) == 2
    assert capsys.readouterr().err == "error: workers must be at least 1, but got workers=0\n"


def test_identical_retrain_run_is_reused(runs, c2, caplog):
    caplog.set_level("INFO", logger="robust")
    same = retrain.Params(
        metric_run=runs[2], metrics=("random", "entropy", "deepgini"), steps=4, seeds=2, **FAST
    )
    assert retrain.main(same) == c2
    assert f"reusing FINISHED retrain run {c2}" in caplog.text


def test_random_is_redrawn_per_seed_from_the_metric_runs_own_draw(runs):
    orders = load_file(_artifact(runs[2], "guidance/order.safetensors"))
    n = 2 * N_TRAIN
    zero = retraining.order_for("random", 0, orders, n, redraw_random=True)
    assert torch.equal(torch.as_tensor(zero), orders["random"])  # the metric run's seed is 0
    one = retraining.order_for("random", 1, orders, n, redraw_random=True)
    assert not torch.equal(torch.as_tensor(one), orders["random"])
    assert retraining.order_for("random", 1, orders, n, redraw_random=False) is orders["random"]
    assert retraining.order_for("nc", 1, orders, n, redraw_random=True) is orders["nc"]


def test_a_metric_the_metric_run_lacks_is_refused():
    with pytest.raises(
        ConfigError,
        match=r"^metrics must be among those metric run abc scored "
        r"\(lsa, dsa\), but got metrics='nc'$",
    ):
        retrain.Params(metrics=("nc", "lsa")).selected(["lsa", "dsa"], "abc")
    assert retrain.Params().selected(["random", "lsa"], "abc") == ("lsa", "random")


def test_too_many_steps_fail_with_one_line(runs, monkeypatch, capsys):
    run_id = MlflowClient().create_run("0").info.run_id  # as `mlflow run` makes one
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    argv = ["--metric_run", runs[2], "--config", "c3", "--steps", "1079"]
    assert _cli.run(retrain.main, retrain.Params, argv) == 2
    message = "steps must be at most the pool size 1078 (one input per step), but got steps=1079"
    assert capsys.readouterr().err == f"error: {message}\n"
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["robust.error"] == message


def test_metric_run_must_be_a_metric_run_on_the_dataset(runs):
    model_run, _, metric_run = runs
    with pytest.raises(ConfigError, match="is a 'train' run, but a 'metric' run is required"):
        retrain.main(retrain.Params(metric_run=model_run, **FAST))
    with pytest.raises(ConfigError, match="scored a pool on dataset 'digits', not 'mnist'"):
        retrain.main(retrain.Params(metric_run=metric_run, dataset="mnist", **FAST))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--config", "c4"],
            "config must be one of c1, c2, c3, but got config='c4'",
            id="config",
        ),
        pytest.param(
            ["--metrics", "deepgini,gini"],
            "metrics must be one of all, nc, lsa, dsa, deepgini, entropy, random, "
            "but got metrics='gini'",
            id="metric",
        ),
        pytest.param(["--metrics", ""], "metrics must be one of all, nc", id="no-metric"),
        pytest.param(["--steps", "0"], "steps must be at least 1, but got steps=0", id="steps"),
        pytest.param(
            ["--budgets", "exact"],
            "budgets must be one of auto, seed, but got budgets='exact'",
            id="budgets",
        ),
        pytest.param(
            ["--budgets", "seed"],
            "budgets=seed exists for gtsrb, intel, cifar10, mnist, fashion only (seed 000's "
            "datasets), but got dataset='digits'",
            id="budgets-seed-digits",
        ),
        pytest.param(
            ["--dataset", "mnist", "--budgets", "seed", "--steps", "20"],
            "steps must be auto with budgets=seed (the seed fixes its sets), but got steps=20",
            id="budgets-seed-steps",
        ),
        pytest.param(["--seeds", "0"], "seeds must be at least 1, but got seeds=0", id="seeds"),
        pytest.param(["--epochs", "0"], "epochs must be at least 1", id="epochs"),
        pytest.param(["--batch_size", "0"], "batch_size must be at least 1", id="batch"),
        pytest.param(["--lr", "0"], "lr must be greater than 0, but got lr=0.0", id="lr"),
        pytest.param(
            ["--optimizer", "lbfgs"], "optimizer must be one of rmsprop, adam, sgd", id="optimizer"
        ),
        pytest.param(
            ["--headline_budget", "0"],
            "headline_budget must be in (0, 1], but got headline_budget=0.0",
            id="budget-low",
        ),
        pytest.param(
            ["--headline_budget", "1.5"], "headline_budget must be in (0, 1]", id="budget-high"
        ),
        pytest.param(
            ["--margin", "0"], "margin must be in (0, 1), but got margin=0.0", id="margin-low"
        ),
        pytest.param(["--margin", "1"], "margin must be in (0, 1)", id="margin-high"),
        pytest.param(["--seed", "-1"], "seed must be at least 0", id="seed"),
        pytest.param(["--warm_start", "maybe"], "warm_start must be true or false", id="warm"),
        pytest.param(["--device", "tpu"], "device must be one of auto, cpu, cuda", id="device"),
        pytest.param(
            ["--workers", "0"], "workers must be at least 1, but got workers=0", id="workers"
        ),
        pytest.param(
            ["--workers", "two"],
            "workers must be an integer, but got workers='two'",
            id="workers-int",
        ),
    ],
)
def test_bad_parameters(argv, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)) as info:
        _cli.parse(retrain.Params, argv)
    assert "\n" not in str(info.value)


def test_limits_accept_their_boundary():
    p = _cli.parse(retrain.Params, ["--steps", "1", "--seeds", "1", "--headline_budget", "1"])
    assert (p.steps, p.seeds, p.headline_budget) == (1, 1, 1.0)
    assert retrain.Params().margin == 0.01
    assert _cli.parse(retrain.Params, ["--margin", "0.005"]).margin == 0.005
    # every auto is the dataset's default, but digits retrains for retraining.EPOCHS[digits]
    assert p.training() == dataclasses.replace(defaults_for("digits"), epochs=10)
    assert retrain.Params(dataset="mnist").training() == defaults_for("mnist")
    assert retrain.Params(epochs=30).training().epochs == 30


def test_main_passes_budgets_to_every_retrain_stage():
    from pipelines import _study, main

    stages = _study.plan(main.Params(dataset="mnist", budgets="seed"))
    retrains = [s for s in stages if s.name.startswith("retrain.")]
    assert [s.kw["budgets"] for s in retrains] == ["seed"] * 3
    assert all(s.kw["budgets"] == "auto" for s in _study.plan(main.Params()) if "budgets" in s.kw)
    with pytest.raises(ConfigError, match=r"^budgets=seed exists for gtsrb, .*dataset='digits'$"):
        _study.plan(main.Params(budgets="seed"))


def test_main_passes_originals_and_margin_to_every_retrain_stage():
    from pipelines import _study, main

    stages = {s.name: s for s in _study.plan(main.Params(originals=3, margin=0.02))}
    extra = [n for n in stages if n.startswith("original")]
    assert extra == [f"original{k}.{s}" for k in (2, 3) for s in ("train", "attack", "metric")]
    assert [stages[f"original{k}.train"].kw["init_seed"] for k in (2, 3)] == [1, 2]
    assert stages["original2.train"].kw["seed"] == 0  # the same split as the study's original
    assert stages["original3.attack"].kw == stages["attack.guided_retraining"].kw
    assert stages["original3.attack"].upstream == {"model_run": "original3.train"}
    for c in ("c1", "c2", "c3"):
        r = stages[f"retrain.{c}"]
        assert r.upstream == {"metric_run": ("metric", "original2.metric", "original3.metric")}
        assert r.kw["margin"] == 0.02
    assert not any(n.startswith("original") for n in (s.name for s in _study.plan(main.Params())))
    with pytest.raises(ConfigError, match=r"^originals must be at least 1, but got originals=0$"):
        main.Params(originals=0)


def test_two_originals_make_the_original_the_unit_of_the_intervals(tmp_path):
    """Two independently trained originals (init seeds 0 and 1, one split), each attacked and
    scored: the retrain run's points carry their original, the seeds run on per original, and
    each comparison is over the two originals' means."""
    with isolated_store(tmp_path):
        fgsm = attack.Params(method="fgsm", quiet=True)
        scored = []
        for init_seed in (0, 1):
            model_run = train.main(train.Params(epochs=2, init_seed=init_seed, quiet=True))
            attack_run = attack.main(dataclasses.replace(fgsm, model_run=model_run))
            scored.append(
                metric.main(
                    metric.Params(
                        attack_run=attack_run, metrics=("deepgini", "random"), quiet=True
                    )
                )
            )
        client = MlflowClient()
        models_ = [client.get_run(m).data.tags["robust.upstream.model"] for m in scored]
        weights = [load_file(_artifact(m, "model/model.safetensors")) for m in models_]
        assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
        p = retrain.Params(
            metric_run=tuple(scored), metrics=("deepgini", "random"), steps=4, seeds=2, **FAST
        )
        run_id = retrain.main(p)
        r = client.get_run(run_id)
        assert r.data.params["metric_run"] == ",".join(scored)
        assert r.data.tags["robust.upstream.metric.2"] == scored[1]
        assert r.data.tags["robust.upstream.model.2"] == models_[1]
        rows = _table(run_id, "curves")
        assert {(row["original"], row["seed"]) for row in rows} == {
            ("0", "0"), ("0", "1"), ("1", "2"), ("1", "3"),
        }  # fmt: skip
        doc = json.loads(_artifact(run_id, "summary.json").read_text())
        assert doc["originals"] == 2 and "2 independently trained" in doc["conditioning"]
        h = doc["headline"]["deepgini"]
        assert h["n"] == 2 and h["unit"] == "original" and "over 2 originals" in h["line"]
        budget = h["n_inputs"]

        def acc(metric_name, original):
            return [
                float(row["accuracy_combined"])
                for row in rows
                if row["metric"] == metric_name and row["original"] == original
                and int(row["n_inputs"]) in budget
            ]  # fmt: skip

        per_original = [
            sum(a - b for a, b in zip(acc("deepgini", o), acc("random", o), strict=True))
            / len(acc("random", o))
            for o in ("0", "1")
        ]
        assert h["per_seed"] == pytest.approx(per_original)
        assert "over 2 original models" in _artifact(run_id, "summary.md").read_text()
        with pytest.raises(ConfigError, match=r"^metric_run must name metric runs on distinct"):
            retrain.main(dataclasses.replace(p, metric_run=(scored[0], scored[0])))


def test_help_lists_every_parameter():
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.retrain", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert out.startswith("usage: python -m pipelines.retrain")
    for field in retrain.Params.__dataclass_fields__:
        assert f"--{field}" in out, field
    assert "(default: c2)" in out and "summary.md" in out


def test_attack_run_without_a_test_split_is_refused(runs):
    """Last: its metric run becomes the newest, which metric_run=auto would pick."""
    train_only = attack.main(attack.Params(method="fgsm", splits=("train",), quiet=True))
    scored = metric.main(metric.Params(attack_run=train_only, metrics=("random",), quiet=True))
    with pytest.raises(
        ConfigError,
        match=(
            rf"^retrain evaluates on the adversarial test set of metric run {scored}'s attack run "
            rf"{train_only}, but it attacked splits=train only; attack the test split too"
        ),
    ):
        retrain.main(retrain.Params(**FAST))
    assert tracking.Lineage("digits").latest("metric") == scored


def test_a_stage_with_engine_local_never_imports_ray(runs, tmp_path):
    """engine=local (the default) is concurrent.futures only: with a ``ray`` on the path that
    leaves a mark and refuses to load, a retrain stage with two worker processes still runs."""
    fake = tmp_path / "fake" / "ray"
    fake.mkdir(parents=True)
    mark = tmp_path / "ray-was-imported"
    (fake / "__init__.py").write_text(
        f"open({str(mark)!r}, 'w').close()\nraise ImportError('ray must not be imported')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(ROOT)])}
    argv = ["--metric_run", runs[2], "--metrics", "entropy", "--steps", "1", "--seeds", "1"]
    argv += ["--workers", "2", "--engine", "local", "--epochs", "1", "--quiet", "true"]
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.retrain", *argv],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert not mark.exists()
    assert _newest_retrain_run().data.params["engine"] == "local"
