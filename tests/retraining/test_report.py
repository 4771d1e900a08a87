"""The retrain report: figure, long and summary tables, summary document and Markdown
(robust/retraining/_report.py)."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
import torch

from robust import models
from robust.data import Split
from robust.retraining import (
    CONDITIONING,
    CONFIGS,
    QUANTITIES,
    STYLES,
    Curves,
    EvalSets,
    Point,
    Repeated,
    conditioning,
    curve_rows,
    flat_metrics,
    plot_accuracy,
    report_context,
    summary_document,
    summary_markdown,
    summary_rows,
    write_report,
    write_study,
)
from robust.training import TrainConfig

from .conftest import curves

N = [0, 10, 20, 40]


@pytest.fixture
def three():
    """c2-style curves (row 0 at 0 inputs) of random and two metrics over three seeds."""
    base = [[0.5, 0.6, 0.7, 0.9], [0.5, 0.62, 0.7, 0.9], [0.5, 0.58, 0.7, 0.9]]
    up = [[a + 0.1 * (k > 0) for a, k in zip(r, N, strict=True)] for r in base]
    same = [
        [a + 0.01 * (-1) ** i * (k > 0) for a, k in zip(r, N, strict=True)]
        for i, r in enumerate(base)
    ]
    fit = [[0, 1, 2, 3]] * 3
    return {
        "deepgini": curves(N, up, fit),
        "nc": curves(N, same, fit),
        "random": curves(N, base, fit),
    }


def test_styles_are_the_seeds():
    assert STYLES == {
        "lsa": ("LSA", "b", "-"),
        "dsa": ("DSA", "g", ":"),
        "deepgini": ("DeepGini", "r", "--"),
        "entropy": ("Softmax entropy", "c", "--"),
        "random": ("Random", "m", "-."),
        "nc": ("NC", "k", "-."),
    }


def test_plot_writes_png_and_svg(three, tmp_path):
    png, svg = plot_accuracy(three, tmp_path / "fig" / "digits_c2_accuracy.png", title="t")
    assert png == tmp_path / "fig" / "digits_c2_accuracy.png" and svg.suffix == ".svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "<svg" in text and "DeepGini" in text and "Random" in text


def test_curve_rows_are_long_format(three):
    rows = curve_rows(three, pool_size=40)
    assert len(rows) == 3 * 3 * 4
    assert list(rows[0]) == [
        "metric",
        "original",
        "seed",
        "step",
        "n_inputs",
        "fraction",
        "n_adversarial",
        *QUANTITIES,
        "fit_s",
    ]
    first = rows[:4]
    assert [r["step"] for r in first] == [0, 1, 2, 3]  # c2: step 0 is the original model
    assert [r["fraction"] for r in first] == [0, 0.25, 0.5, 1.0]
    c1 = curve_rows({"nc": curves([10, 40], [[0.5, 0.6]])}, pool_size=40)
    assert [r["step"] for r in c1] == [1, 2]


def test_summary_document_says_which_metric_beats_random(three):
    doc = summary_document(three, 40, budget=0.5)
    assert set(doc["metrics"]) == {"deepgini", "nc", "random"}
    g = doc["metrics"]["deepgini"]
    assert g["best_accuracy"]["mean"] == pytest.approx(1.0)
    assert g["mean_curve_best"] == {"n_inputs": 40, "accuracy": pytest.approx(1.0)}
    assert doc["headline_note"] is None and set(doc["headline"]) == {"deepgini", "nc"}
    assert doc["headline"]["deepgini"]["verdict"] == "beats random"
    assert doc["headline"]["deepgini"]["mean"] == pytest.approx(0.1)
    # nc: ±.01 per seed; t = .5, p = .67; TOST p = .21 (see test_inference): not equivalent
    assert doc["headline"]["nc"]["verdict"] == "inconclusive"
    assert doc["headline"]["nc"]["p_value"] == pytest.approx(0.6666667, abs=1e-6)
    # Holm over this run's two metrics: deepgini's p ≈ 0 (no spread) is doubled, nc's .67 kept
    assert doc["headline"]["nc"]["p_holm"] == pytest.approx(0.6666667, abs=1e-6)
    assert doc["headline"]["deepgini"]["line"].startswith("deepgini vs random at ≤ 50% ")
    assert (doc["margin"], doc["alpha"]) == (0.01, 0.05)
    assert "this one original model" in doc["conditioning"]
    # the endpoints: in the fixture every quantity copies the combined accuracy
    for endpoint in ("clean", "adversarial"):
        heads = doc[f"headline_{endpoint}"]
        assert set(heads) == {"deepgini", "nc"}
        assert heads["nc"]["quantity"] == f"accuracy_{endpoint}"
        assert heads["nc"]["line"].startswith(f"nc vs random at ≤ 50% of the pool (10, 20 "
                                              f"inputs): accuracy_{endpoint} ")  # fmt: skip
        assert g[f"auc_{endpoint}"] == g["auc"]
    json.dumps(doc)  # JSON-ready


def test_summary_without_random_or_without_a_small_budget_explains_why(three):
    no_random = summary_document({"nc": three["nc"]}, 40)
    assert no_random["headline"] == {} and "both must be retrained" in no_random["headline_note"]
    coarse = summary_document(three, 40, budget=0.2)
    assert coarse["headline"] == {}
    assert "no budget step is within 20% of the pool of 40" in coarse["headline_note"]


def test_markdown_flat_metrics_and_tables(three):
    doc = summary_document(three, 40, budget=0.5)
    doc["metrics"]["deepgini"] |= {"time_s": 12.5, "energy_kwh": 1e-4}
    md = summary_markdown(doc, title="Guided retraining: digits, c2", context={"config": "c2"})
    assert md.startswith("# Guided retraining: digits, c2\n\n- **config**: c2\n")
    assert "mean [95 % CI] over 3 seeds" in md and "| DeepGini | 1 [1, 1] |" in md
    assert "| 12.5 | 0.0001 |" in md
    assert doc["headline"]["deepgini"]["line"] in md
    assert doc["headline_adversarial"]["deepgini"]["line"] in md
    assert "### Clean test accuracy (accuracy_clean)" in md and "Holm" in md
    assert "TOST" in md and "else inconclusive" in md and doc["conditioning"] in md
    flat = flat_metrics(doc)
    assert flat["deepgini/best_accuracy_mean"] == pytest.approx(1.0)
    assert flat["headline/deepgini_vs_random_verdict"] == 1.0
    assert flat["headline/nc_vs_random_verdict"] == 0.0
    assert flat["headline/nc_vs_random_equivalent"] == 0.0
    assert flat["headline/nc_vs_random_p_holm"] == doc["headline"]["nc"]["p_holm"]
    for endpoint in ("clean", "adversarial"):
        h = doc[f"headline_{endpoint}"]["deepgini"]
        for field in ("mean", "ci_low", "ci_high", "p_value", "p_holm", "p_tost", "p_tost_holm"):
            assert flat[f"headline/deepgini_vs_random_{endpoint}_{field}"] == h[field]
        assert flat[f"headline/deepgini_vs_random_{endpoint}_verdict"] == 1.0
        assert flat[f"deepgini/auc_{endpoint}_mean"] == doc["metrics"]["deepgini"]["auc"]["mean"]
    assert "headline/random_vs_random_mean" not in flat
    rows = summary_rows(doc)
    assert [r["metric"] for r in rows] == ["deepgini", "nc", "random"]
    assert rows[0]["verdict"] == "beats random" and rows[2]["verdict"] is None
    assert rows[1]["verdict_clean"] == "inconclusive" and rows[2]["verdict_adversarial"] is None
    assert rows[1]["vs_random_p_holm"] == doc["headline"]["nc"]["p_holm"]
    assert rows[1]["vs_random_adversarial_p_tost_holm"] == pytest.approx(
        doc["headline_adversarial"]["nc"]["p_tost_holm"]
    )
    assert rows[0]["time_s"] == 12.5 and rows[1]["time_s"] is None


def test_write_report(three, tmp_path):
    doc = summary_document(three, 40, budget=0.5)
    out = write_report(
        tmp_path, three, doc, title="t", figure="digits_c2_accuracy", context={"dataset": "digits"}
    )
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "figures/digits_c2_accuracy.png",
        "figures/digits_c2_accuracy.svg",
        "figures/digits_c2_accuracy_adversarial.png",
        "figures/digits_c2_accuracy_adversarial.svg",
        "figures/digits_c2_accuracy_clean.png",
        "figures/digits_c2_accuracy_clean.svg",
        "summary.json",
        "summary.md",
        "tables/curves.csv",
        "tables/summary.csv",
    ]
    assert json.loads((out / "summary.json").read_text())["context"] == {"dataset": "digits"}
    svg = (out / "figures" / "digits_c2_accuracy_adversarial.svg").read_text()
    assert "t (adversarial)" in svg  # the title; the y label names the quantity
    with (out / "tables" / "curves.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 36


def _repeated(n_inputs, rows, model) -> Repeated:
    points = [
        Point(seed, step, k, k // 2, float(step), dict.fromkeys(QUANTITIES, acc))
        for seed, row in enumerate(rows)
        for step, (k, acc) in enumerate(zip(n_inputs, row, strict=True))
    ]
    best = max((p for p in points if p.step), key=lambda p: p.scores["accuracy_combined"])
    return Repeated(points, best, model)


def test_write_study_logs_the_curves_and_summary_and_writes_every_artifact(tmp_path):
    model = models.build("digits_cnn", (1, 8, 8), 10)
    rows = [[0.5, 0.6, 0.7, 0.9], [0.5, 0.62, 0.71, 0.9]]
    results = {
        "deepgini": _repeated(
            N, [[a + 0.05 * (k > 0) for a, k in zip(r, N, strict=True)] for r in rows], model
        ),
        "random": _repeated(N, rows, model),
    }
    logged = []
    costs = {m: {"time_s": 2.0, "energy_kwh": 1e-6, "emissions_kg": 0.0} for m in results}
    doc = write_study(
        tmp_path,
        results,
        40,
        budget=0.5,
        original={"accuracy_combined": 0.5},
        costs=costs,
        title="T",
        figure="digits_c2_accuracy",
        dataset="digits",
        classes=[str(i) for i in range(10)],
        context={"dataset": "digits"},
        log_metrics=lambda metrics, step: logged.append((metrics, step)),
    )
    mean = [(m, s) for m, s in logged if s is not None]
    assert [s for _, s in mean] == N * 2
    endpoints = ("combined", "clean", "adversarial")
    means = {f"deepgini/accuracy_{e}_mean": pytest.approx(0.66) for e in endpoints}
    assert mean[1] == (means, 10)
    assert logged[-1] == (flat_metrics(doc), None)
    assert doc["metrics"]["random"]["time_s"] == 2.0 and doc["original"] == {
        "accuracy_combined": 0.5
    }
    assert doc["best_models"]["random"] == results["random"].best.row()
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {
        "figures/digits_c2_accuracy.png",
        "figures/digits_c2_accuracy.svg",
        "tables/curves.csv",
        "tables/summary.csv",
        "summary.json",
        "summary.md",
        "best/best.json",
        "best/random/model.safetensors",
        "best/deepgini/model.safetensors",
    } <= files
    best = json.loads((tmp_path / "best" / "best.json").read_text())
    assert best == json.loads(json.dumps(doc["best_models"]))
    assert json.loads((tmp_path / "summary.json").read_text())["context"] == {"dataset": "digits"}


def test_report_context_lines():
    sets = EvalSets(
        Split(torch.zeros(3, 1, 8, 8), torch.zeros(3, dtype=torch.int64)),
        Split(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64)),
    )
    kwargs = dict(
        dataset="digits",
        config="c3",
        upstream={"metric": "m1", "attack": "a1", "model": "t1"},
        n_clean=5,
        n_adversarial=4,
        budgets=[2, 4],
        seeds=range(0, 2),
        train=TrainConfig("adam", 0.001, epochs=3, batch_size=32),
        warm_start=False,
        tests=sets,
        original={"accuracy_clean": 0.5},
    )
    context = report_context(**kwargs)
    with_val = dataclasses.replace(sets, val=Split(torch.zeros(6, 1, 8, 8), torch.zeros(6).long()))
    lines = {
        s: report_context(**{**kwargs, "tests": with_val, "select_on": s})["best step chosen on"]
        for s in ("val", "val_clean")
    }
    assert lines == {
        "val": "6 validation inputs, clean followed by adversarial",
        "val_clean": "6 clean validation inputs (no adversarial validation set)",
    }
    assert context == {
        "dataset": "digits",
        "config": f"c3: {CONFIGS['c3']}",
        "runs": "metric m1, attack a1, model t1",
        "pool": "5 clean + 4 adversarial inputs; retrained on 4",
        "budgets": "2, 4",
        "seeds": "0, 1",
        "training": "adam lr 0.001, 3 epochs, batch 32, warm_start=false",
        "test sets": "3 clean + 2 adversarial",
        "original model": "accuracy_clean 0.5000",
        "best step chosen on": "the combined test set (the seed's choice: optimistic)",
    }


def test_the_report_says_the_unit_is_the_original_when_there_are_several():
    points = [
        Point(seed, j, k, 0, 1.0, dict.fromkeys(QUANTITIES, 0.5 + 0.01 * (seed + j)), original=o)
        for o, seeds in ((0, (0, 1)), (1, (2, 3)), (2, (4, 5)))
        for seed in seeds
        for j, k in enumerate(N)
    ]
    c = Curves.from_points(points)
    doc = summary_document({"nc": c, "random": c}, 40, budget=0.5)
    assert doc["originals"] == 3 and doc["conditioning"] == conditioning(c)
    assert "3 independently trained original models" in doc["conditioning"]
    assert "2 seeds each" in doc["conditioning"] and "2 degrees of freedom" in doc["conditioning"]
    md = summary_markdown(doc, title="t")
    assert "over 3 original models (each the mean over its seeds)" in md
    assert "Per original (the mean over its seeds)" in md
    assert summary_document({"nc": three_like(), "random": three_like()}, 40)["conditioning"] == (
        CONDITIONING
    )
    assert {r["original"] for r in curve_rows({"nc": c}, 40)} == {0, 1, 2}


def three_like() -> Curves:
    return curves(N, [[0.5, 0.6, 0.7, 0.8], [0.5, 0.6, 0.7, 0.9]])
