"""The study report: ``report.md`` and a self-contained ``report.html`` over a parent run's
child stages, every figure also a PNG under ``figures/``.

Sections: the stages (run ids, reused or new), the retraining curves per configuration
(combined, clean and adversarial test accuracy), the guidance-metric ranking with 95 % CIs and
each metric against random per endpoint, with p-values Holm-adjusted over the whole study,
the attack × defence matrices (transfer, adaptive), DGN vs PGD generation time, and time and
energy per stage. Everything is read back from the tracking store through
:mod:`robust.results` and the stages' own artifacts, so a report can be rebuilt for any
finished ``main`` run (``write_study_report(run_id, directory)``).
"""

from __future__ import annotations

import base64
import html
import json
import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from robust.evaluation import interval_table
from robust.results._query import _CHILD_TAG, costs, robustness_matrix
from robust.retraining import (
    CONDITIONING,
    ENDPOINTS,
    MARGIN,
    Interval,
    holm,
    paired_t,
    tost,
    verdict,
)
from robust.tracking import lineage, notes, store
from robust.utils import markdown_table

METRIC_LABELS = {
    "nc": "NC",
    "lsa": "LSA",
    "dsa": "DSA",
    "deepgini": "DeepGini",
    "entropy": "Softmax entropy",
    "random": "Random",
}


@dataclass
class _Report:
    """The report as an ordered list of blocks, rendered to Markdown and to HTML.

    A table's ``run`` column (run ids) becomes links to the runs: relative UI addresses in
    Markdown (they work in MLflow's artifact viewer), absolute ones under ``ui`` (the UI's
    address, :func:`robust.tracking.notes.ui_base`) in both. With ``ui`` and ``logged_to`` (the
    run whose artifacts hold ``figures/``), the Markdown's images are the server's copies:
    MLflow's viewer shows no image at a relative path.
    """

    directory: Path
    blocks: list[tuple[str, Any]]
    ui: str | None = None
    logged_to: str | None = None
    experiments: dict[str, str] | None = None  # run id → experiment id, for links

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def text(self, text: str) -> None:
        self.blocks.append(("text", text))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame))

    def figure(self, path: Path, caption: str) -> None:
        """Add a PNG (already under ``directory/figures``)."""
        self.blocks.append(("figure", (path, caption)))

    def figures(self) -> list[Path]:
        """The figure files, in order."""
        return [value[0] for kind, value in self.blocks if kind == "figure"]

    def markdown(self) -> str:
        out = []
        for kind, value in self.blocks:
            if kind == "heading":
                out.append(f"{'#' * value[0]} {value[1]}")
            elif kind == "text":
                out.append(value)
            elif kind == "table":
                out.append(markdown_table(self._linked(value, self._md_link)))
            else:
                path, caption = value
                src = path.relative_to(self.directory).as_posix()
                if self.ui and self.logged_to:
                    src = notes.artifact_url(self.ui, self.logged_to, src)
                out.append(f"![{caption}]({src})")
        return "\n\n".join(out) + "\n"

    def _url(self, run_id: str) -> str | None:
        experiment = (self.experiments or {}).get(run_id)
        return notes.run_url(run_id, experiment, self.ui) if experiment else None

    def _md_link(self, run_id: str) -> str:
        url = self._url(run_id)
        return f"[{run_id}]({url})" if url else run_id

    def _html_link(self, run_id: str) -> str:
        url = self._url(run_id) if self.ui else None  # a relative one goes nowhere
        text = html.escape(run_id)
        return f'<a href="{html.escape(url)}" target="_blank">{text}</a>' if url else text

    @staticmethod
    def _linked(frame: pd.DataFrame, link) -> pd.DataFrame:
        """``frame`` with its ``run`` column (run ids) as links."""
        if "run" not in frame.columns:
            return frame
        return frame.assign(run=[link(str(r)) for r in frame["run"]])

    def html(self, title: str) -> str:
        out = []
        for kind, value in self.blocks:
            if kind == "heading":
                out.append(f"<h{value[0]}>{html.escape(value[1])}</h{value[0]}>")
            elif kind == "text":
                out.append(f"<p>{html.escape(value)}</p>")
            elif kind == "table":
                shown = value[[c for c in value.columns if not str(c).startswith("_")]]
                shown = shown.map(lambda v: html.escape(v) if isinstance(v, str) else v)
                shown = self._linked(shown, self._html_link)  # run ids: no markup in them
                shown = shown.rename(columns=lambda c: html.escape(str(c)))
                out.append(shown.to_html(index=False, border=0, na_rep="", escape=False))
            else:
                path, caption = value
                data = base64.b64encode(path.read_bytes()).decode()
                out.append(
                    f'<figure><img alt="{html.escape(caption)}" '
                    f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
                    "</figcaption></figure>"
                )
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
            "img{max-width:100%}figcaption{color:#555;font-size:90%}"
        )
        body = "\n".join(out)
        return (
            f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>\n{body}\n</body></html>\n"
        )


def write_study_report(run_id: str, directory: str | Path, *, logged: bool = False) -> list[Path]:
    """Write the report of parent run ``run_id`` (a ``main`` run) into ``directory``.

    Run ids in its tables link to the runs (absolute links when the UI's address is known:
    :func:`robust.tracking.notes.ui_base`).

    Args:
        logged: the directory becomes the run's own artifacts (``main`` logs it): with a known
            UI address, report.md's figures are then the server's copies, which MLflow's
            artifact viewer shows (it shows no image at a relative path).

    Returns:
        The files written: ``report.md``, ``report.html`` and ``figures/*.png``.

    Raises:
        ConfigError: an unknown run id.
    """
    directory = Path(directory)
    (directory / "figures").mkdir(parents=True, exist_ok=True)
    parent = lineage.fetch(run_id, follow=False)  # RUNNING while main writes its own report
    children = _children(parent)
    dataset = parent.data.tags.get("robust.dataset", "")
    title = f"robust study: {dataset}"
    ui = notes.ui_base()
    experiments = {run.info.run_id: run.info.experiment_id for run in children.values()}
    r = _Report(directory, [], ui, run_id if logged else None, experiments)
    r.heading(title, 1)
    r.text(
        f"Parent run {parent.info.run_id}. Every number below is read from the stage runs "
        "listed here; a reused stage was computed by an earlier study with the same "
        "parameters, upstream runs and code."
    )
    _stages(r, children)
    _retraining(r, children)
    _matrices(r, children)
    _generation(r, children)
    _costs(r, children, parent.info.run_id)
    (directory / "report.md").write_text(r.markdown())
    (directory / "report.html").write_text(r.html(title))
    return [directory / "report.md", directory / "report.html", *r.figures()]


# ---- sections ------------------------------------------------------------------------------
def _stages(r: _Report, children: dict[str, Any]) -> None:
    r.heading("Stages")
    rows = [
        {"stage": name, "run": run.info.run_id, "status": run.info.status}
        for name, run in children.items()
    ]
    r.table(pd.DataFrame(rows))


def _retraining(r: _Report, children: dict[str, Any]) -> None:
    retrains = {k.split(".", 1)[1]: v for k, v in children.items() if k.startswith("retrain.")}
    if not retrains:
        return
    r.heading("Guided retraining")
    ranking, docs = [], {}
    for config, run in retrains.items():
        run_id = run.info.run_id
        doc = docs[config] = json.loads(_download(run_id, "summary.json").read_text())
        context = doc.get("context", {})
        r.heading(f"Configuration {context.get('config', config)}", 3)
        r.text(
            f"Pool: {context.get('pool', doc['pool_size'])}. Budgets: "
            f"{context.get('budgets', '')}. Seeds: {context.get('seeds', '')}. Training: "
            f"{context.get('training', '')}. Best step chosen on "
            f"{context.get('best step chosen on', 'the combined test set')}. Accuracy on the "
            "clean + adversarial test sets combined, and (when the run has them) on the clean "
            "and the adversarial test set alone (mean over seeds, band: 95 % CI"
            f"{' over the originals' if doc.get('originals', 1) > 1 else ''})."
        )
        for art in store.client().list_artifacts(run_id, "figures"):
            if art.path.endswith(".png"):
                endpoint = next(
                    (e for e in ("clean", "adversarial") if art.path.endswith(f"_{e}.png")), ""
                )
                suffix = f"_{endpoint}" if endpoint else ""
                src = _download(run_id, art.path)
                dst = r.directory / "figures" / f"retraining_{config}{suffix}.png"
                shutil.copyfile(src, dst)
                r.figure(dst, f"Retraining curves, {config}, {endpoint or 'combined'} accuracy")
    tests = _study_tests(docs)
    for config, doc in docs.items():
        ranking.append(_ranking_rows(config, doc, tests))
    frame = pd.concat(ranking, ignore_index=True)
    margin = next((d["margin"] for d in docs.values() if "margin" in d), MARGIN)
    r.heading("Metric ranking", 3)
    r.text(
        "Per configuration, metrics ranked by the area under the mean accuracy curve (AUC, "
        "normalised by the pool size; of combined, clean and adversarial accuracy); each value "
        "is the mean over seeds with its 95 % t-interval (per comparison, not adjusted). "
        "Accuracy at best: the combined test accuracy at each seed's best step, chosen on "
        "validation (the selection set), never on test; inputs at best: that step's budget. Δ vs "
        "random: paired difference in combined accuracy at budgets up to the headline fraction "
        "of the pool. p (Holm): its paired t-test p-value Holm-adjusted over every metric × "
        "configuration comparison of this study (per endpoint); the verdict reads the adjusted "
        "p-values at α = 0.05: beats / worse when the difference test rejects, equivalent when "
        f"TOST (two one-sided paired t-tests, margin ±{margin:g}, Holm-adjusted the same way) "
        "rejects both sides, else inconclusive: no difference shown, and no equivalence either. "
        + " ".join(dict.fromkeys(d.get("conditioning", CONDITIONING) for d in docs.values()))
    )
    r.table(frame)
    path = r.directory / "figures" / "metric_ranking.png"
    _plot_ranking(frame, path)
    r.figure(path, "AUC per metric and configuration (mean, 95 % CI)")
    endpoints = _endpoint_rows(docs, tests)
    if not endpoints.empty:
        r.heading("Against random, per endpoint", 3)
        r.text(
            "Each metric's paired difference from random on the combined, the clean and the "
            "adversarial test accuracy: p from the paired t-test, Holm-adjusted over the run's "
            "metrics (as its summary) and over the whole study (as the verdicts here); TOST: "
            "the equivalence test's p, Holm-adjusted over the study."
        )
        r.table(endpoints)


def _study_tests(docs: dict[str, dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(endpoint, config, metric) → ``p_value``, ``p_holm_study``, ``p_tost_holm_study`` and
    ``verdict``: every comparison's tests recomputed from its per-seed differences, Holm-adjusted
    over all metric × configuration comparisons of the study, one family per endpoint."""
    out = {}
    for endpoint in ENDPOINTS:
        key = "headline" if endpoint == "combined" else f"headline_{endpoint}"
        items = [(c, m, h, d) for c, d in docs.items() for m, h in d.get(key, {}).items()]
        if not items:
            continue
        p = [float(paired_t(h["per_seed"]).p_value) for _, _, h, _ in items]
        p_tost = [
            float(tost(h["per_seed"], d.get("margin", MARGIN)).p_value) for _, _, h, d in items
        ]
        p_holm, p_tost_holm = holm(p), holm(p_tost)
        for i, (config, metric, h, doc) in enumerate(items):
            bounds = (h.get("ci_low"), h.get("ci_high"))
            low, high = (math.nan if b is None else b for b in bounds)
            interval = Interval(h["mean"], low, high, h["n"])
            out[endpoint, config, metric] = {
                "p_value": p[i],
                "p_holm_run": h.get("p_holm"),
                "p_holm_study": float(p_holm[i]),
                "p_tost_holm_study": float(p_tost_holm[i]),
                "verdict": verdict(
                    interval,
                    doc.get("baseline", "random"),
                    p_adjusted=p_holm[i],
                    p_equivalence=p_tost_holm[i],
                ),
            }
    return out


def _endpoint_rows(
    docs: dict[str, dict[str, Any]], tests: dict[tuple[str, str, str], dict[str, Any]]
) -> pd.DataFrame:
    rows = []
    for (endpoint, config, metric), t in tests.items():
        key = "headline" if endpoint == "combined" else f"headline_{endpoint}"
        rows.append(
            {
                "config": config,
                "metric": METRIC_LABELS.get(metric, metric),
                "endpoint": endpoint,
                "Δ vs random": _interval(docs[config][key][metric]),
                "p": _round(t["p_value"], 4),
                "p (Holm, run)": _round(t["p_holm_run"], 4),
                "p (Holm, study)": _round(t["p_holm_study"], 4),
                "TOST p (Holm, study)": _round(t["p_tost_holm_study"], 4),
                "verdict": t["verdict"],
            }
        )
    return pd.DataFrame(rows)


def _ranking_rows(
    config: str, doc: dict[str, Any], tests: dict[tuple[str, str, str], dict[str, Any]]
) -> pd.DataFrame:
    rows = []
    for m, s in doc["metrics"].items():
        head = doc.get("headline", {}).get(m)
        t = tests.get(("combined", config, m), {})
        rows.append(
            {
                "config": config,
                "metric": METRIC_LABELS.get(m, m),
                "AUC": _interval(s["auc"]),
                "AUC clean": _interval(s["auc_clean"]) if "auc_clean" in s else "",
                "AUC adversarial": (
                    _interval(s["auc_adversarial"]) if "auc_adversarial" in s else ""
                ),
                "accuracy at best": _interval(s["best_accuracy"]),
                "inputs at best": (_interval(s["best_n_inputs"]) if "best_n_inputs" in s else ""),
                "Δ vs random": _interval(head) if head else _no_headline(m, doc),
                "p (Holm)": _round(t.get("p_holm_study"), 4),
                "verdict": t.get("verdict", head["verdict"] if head else ""),
                "n": f"{s['auc']['n']} {'originals' if doc.get('originals', 1) > 1 else 'seeds'}",
                "_auc": s["auc"]["mean"],
                "_low": s["auc"]["ci_low"],
                "_high": s["auc"]["ci_high"],
            }
        )
    frame = pd.DataFrame(rows).sort_values("_auc", ascending=False, kind="stable")
    frame.insert(1, "rank", range(1, len(frame) + 1))
    return frame


def _no_headline(metric: str, doc: dict[str, Any]) -> str:
    if metric == doc.get("baseline"):
        return "baseline"
    return f"no budget ≤ {doc.get('budget', 0):.0%} of the pool"


def _plot_ranking(frame: pd.DataFrame, path: Path) -> None:
    configs = list(dict.fromkeys(frame["config"]))
    fig, axes = _panels(len(configs), (4.2, 3.4))
    for ax, config in zip(axes, configs, strict=True):
        part = frame[frame["config"] == config].iloc[::-1]
        mean = part["_auc"].to_numpy(float)
        low = part["_low"].to_numpy(float)
        high = part["_high"].to_numpy(float)
        err = [mean - low, high - mean] if not pd.isna(low).any() else None
        ax.errorbar(mean, range(len(part)), xerr=err, fmt="o", capsize=3)
        ax.set_yticks(range(len(part)), part["metric"])
        ax.set_title(config)
        ax.set_xlabel("AUC of combined accuracy")
        ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=110)


_READING = (
    "Each cell is the top-1 accuracy (%) on the column's test inputs, with its Wilson 95 % "
    "interval and n: the interval is the sampling uncertainty, conditional on the test inputs "
    "being a sample of the test distribution. An attack's accuracy is an upper bound on the "
    "true robust accuracy (a stronger attack can only lower it); *worst case* counts the inputs "
    "no adaptive attack fooled."
)


def _matrices(r: _Report, children: dict[str, Any]) -> None:
    if "evaluate" not in children:
        return
    run = children["evaluate"]
    run_id = run.info.run_id
    r.heading("Attack × defence")
    r.text(_READING)
    present = {Path(a.path).name for a in store.client().list_artifacts(run_id, "matrix")}
    for kind, what in (
        ("transfer", "adversarial test sets crafted once on the original model"),
        ("adaptive", "attacks crafted against each row's model itself, and their worst case"),
        ("per_class", "classes, under the adaptive worst case"),
    ):
        if f"{kind}.csv" not in present:
            continue
        r.heading(f"{kind.replace('_', ' ').capitalize()} robust accuracy", 3)
        r.text(f"Rows: models (the original, the adversarially trained ones, the retrained best "
               f"models); columns: {what}.")  # fmt: skip
        if f"{kind}_cells.csv" in present:
            cells = pd.read_csv(_download(run_id, f"matrix/{kind}_cells.csv"))
            r.table(interval_table(cells))
        else:  # runs from before the intervals
            r.table((robustness_matrix(run_id, kind) * 100).round(1).reset_index())
        dst = r.directory / "figures" / f"{kind}_matrix.png"
        shutil.copyfile(_download(run_id, f"matrix/{kind}.png"), dst)
        r.figure(dst, f"{kind.replace('_', ' ')} robust accuracy (%)")
    if "eps_curve.png" in present:
        r.heading("Robust accuracy against ε", 3)
        r.text("Each model's accuracy under the curve's attack as the budget grows, with "
               "Wilson bands; it should reach about 0 at large ε (else see the masking "
               "checks).")  # fmt: skip
        dst = r.directory / "figures" / "eps_curve.png"
        shutil.copyfile(_download(run_id, "matrix/eps_curve.png"), dst)
        r.figure(dst, "robust accuracy against ε")
    if "masking.csv" in present:
        checks = pd.read_csv(_download(run_id, "matrix/masking.csv"))
        r.heading("Gradient-masking checks", 3)
        r.text("A flag is evidence that the robust accuracy above may come from a gradient the "
               "attacks cannot use (Carlini et al. 2019), not proof; no flag is not proof of "
               f"robustness. Flagged: {run.data.tags.get('robust.masking', 'n/a')}.")  # fmt: skip
        checks["flag"] = checks["flagged"].map({True: "FLAG", False: "ok"})
        r.table(checks[["model", "name", "value", "threshold", "flag", "message"]].round(3))


def _generation(r: _Report, children: dict[str, Any]) -> None:
    attacks = {k.split(".", 1)[1]: v for k, v in children.items() if k.startswith("attack.")}
    if not attacks:
        return
    rows = []
    for label, run in attacks.items():
        m = run.data.metrics
        train_s = m.get("time/train_s", 0.0) + m.get("time/load_generators_s", 0.0)
        gen_s = m.get("time/generate_s")
        if gen_s is None:  # gradient attacks: one phase per split
            gen_s = sum(v for k, v in m.items() if k.startswith("time/attack_"))
        n = sum(m.get(f"{s}/n_adv", 0.0) for s in ("train", "test"))
        rows.append(
            {
                "attack": label,
                "one-off training (s)": _round(train_s, 2),
                "generation (s)": _round(gen_s, 3),
                "inputs": int(n),
                "inputs/s": _round(n / gen_s, 0) if gen_s else None,
                "test success rate": _round(m.get("test/success_rate"), 3),
                "test mean L∞": _round(m.get("test/linf_mean"), 3),
                "test mean L2": _round(m.get("test/l2_mean"), 3),
            }
        )
    frame = pd.DataFrame(rows)
    r.heading("Generation time: DGN vs PGD")
    r.text(
        "Generation: crafting the train and test adversarial sets (a DGN is one forward pass "
        "per input; PGD iterates). One-off training: fitting the DGN generators, paid once and "
        "reusable (-P generators_run)."
    )
    r.table(frame)
    path = r.directory / "figures" / "generation_time.png"
    _plot_bars(
        frame["attack"],
        {
            "generation per 1,000 inputs (s)": 1000 / frame["inputs/s"].astype(float),
            "one-off training (s)": frame["one-off training (s)"].astype(float),
        },
        path,
        log=True,
    )
    r.figure(path, "Generation time per 1,000 inputs and one-off DGN training time")


def _costs(r: _Report, children: dict[str, Any], parent: str) -> None:
    finished = {k: v for k, v in children.items() if v.info.status == "FINISHED"}
    if not finished:
        return
    table = costs([v.info.run_id for v in finished.values()])
    total = table[table["phase"] == "total"].set_index("run_id")
    rows = []
    for name, run in finished.items():
        t = total.loc[run.info.run_id]
        rows.append(
            {
                "stage": name,
                "computed": "here" if _own(run, parent) else "reused",
                "time (s)": _round(t["time_s"], 1),
                "energy (Wh)": _round(t["energy_kwh"] * 1000, 3),
                "CO2 (g)": _round(t["emissions_kg"] * 1000, 3),
                "CPU (%)": _round(t["cpu_percent"], 0),
                "GPU (%)": _round(t["gpu_utilization_percent"], 0),
                "peak RSS (MB)": _round(t["peak_rss_mb"], 0),
            }
        )
    frame = pd.DataFrame(rows)
    methods = set(total["energy_method"].dropna())
    estimate = bool(total["energy_estimate"].any())
    r.heading("Time and energy per stage")
    r.text(
        f"Energy from codecarbon ({', '.join(sorted(methods)) or 'unknown'}"
        f"{'; an estimate from TDP, not a measurement' if estimate else ''}). CPU: this "
        "process, 100 % = one core. A reused stage's cost was paid when it was computed."
    )
    r.table(frame)
    path = r.directory / "figures" / "stage_costs.png"
    _plot_bars(
        frame["stage"],
        {"time (s)": frame["time (s)"].astype(float), "energy (Wh)": frame["energy (Wh)"]},
        path,
    )
    r.figure(path, "Wall time and energy per stage")


# ---- helpers -------------------------------------------------------------------------------
def _children(parent) -> dict[str, Any]:
    """Child name (tag ``robust.child.<name>``) → its run (reuse pointers followed), in the
    order the stages ran."""
    named = [
        (k[len(_CHILD_TAG) :], v) for k, v in parent.data.tags.items() if k.startswith(_CHILD_TAG)
    ]
    runs = {name: lineage.fetch(run_id) for name, run_id in named}
    return dict(sorted(runs.items(), key=lambda kv: (kv[1].info.start_time, kv[0])))


def _own(run, parent: str) -> bool:
    return run.data.tags.get("mlflow.parentRunId") == parent


def _download(run_id: str, path: str) -> Path:
    """Artifact ``path`` of ``run_id`` through the lineage look-up (downloaded once)."""
    return lineage.Lineage().artifact(run_id, path)


def _round(value: Any, digits: int) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits) if digits else round(float(value))


def _interval(d: dict[str, Any]) -> str:
    """``mean [low, high]`` with 4 decimals, or the mean alone without a CI."""
    if d.get("ci_low") is None:
        return f"{d['mean']:.4f}"
    return f"{d['mean']:.4f} [{d['ci_low']:.4f}, {d['ci_high']:.4f}]"


def _panels(n: int, size: tuple[float, float]):
    """A figure of ``n`` panels side by side, each ``size`` inches, on an Agg canvas of its own
    (the caller's matplotlib backend is left alone, as ``plot_matrix`` does)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * n, size[1]), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, n, squeeze=False)[0]


def _plot_bars(labels: Iterable[str], series: dict[str, Any], path: Path, log: bool = False):
    labels = list(labels)
    fig, axes = _panels(len(series), (5, 0.35 * len(labels) + 1.5))
    for ax, (name, values) in zip(axes, series.items(), strict=True):
        ax.barh(range(len(labels)), pd.Series(values).fillna(0).to_numpy(float))
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.set_xlabel(name)
        if log:
            ax.set_xscale("symlog", linthresh=0.01)
        ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=110)
