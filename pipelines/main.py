"""The whole study on one dataset: one parent run, every stage a child run, and a report.

train → attacks (``fgsm``, ``pgd``, ``dgn`` with each of ``dgn_losses``, and seed 000's
``guided_retraining`` preset) → metric (every guidance metric on the preset's pool, seed 000's
protocol) → retrain (each of ``configs``) → advtrain (one model per attack, and one online
PGD-AT model with ``pgd_at``) → evaluate (the original, every adversarially trained model and
every retrain run's best models: transfer, adaptive under ``adaptive`` with Wilson intervals,
an ε-curve at ¼, ½, ¾ and 1 × ε, the masking checks) → report. An identical FINISHED stage
is reused, not rerun (``force=true`` recomputes all).

The defaults are sized for ``digits`` on two CPU cores (README gives the measured time):
retraining uses 5 budget steps × 3 seeds with the dataset's epochs. The seeds' protocol sizes
are parameters: ``retrain_steps=20`` (or ``budgets=seed``, seed 000's exact sets),
``retrain_seeds`` and ``dgn_epochs`` (auto: the seeds').
With ``originals=K`` the retraining starts from K independently trained originals (stages
``original<k>.train``, ``original<k>.attack``, ``original<k>.metric`` for k = 2 … K).
Params: see ``Params``. Tags: ``robust.child.<name>`` = each stage's run id (``train``,
``attack.<label>``, ``metric``, ``retrain.<config>``, ``advtrain.<label>``, ``evaluate``).
Metrics: ``time/<name>_s``, ``energy/<name>_kwh`` per child stage (a reused stage costs ~0 here),
``time/report_s``, and the study's key results (:func:`robust.results.study_metrics`:
``study/clean_accuracy/original``, ``study/robust_accuracy_best/<attack>``,
``study/<config>/best_vs_random``, ``…/n_beat_random``, ``…/n_worse_than_random``).
Registered models (``register``, on by default): the original, every advtrain model and each
retrain run's best model are versions of the registered model named like the study's
experiment (``robust-<dataset>``), aliases ``original`` and ``most-robust``.
Artifacts: ``report.md``, ``report.html`` (self-contained), and each
figure as ``figures/*.png`` (:func:`robust.results.write_study_report`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pipelines import _cli, _fanout, _params, _study, advtrain, evaluate, train
from robust import guidance, results, retraining, tracking
from robust.attacks import check_eps, dgn
from robust.errors import ConfigError

log = logging.getLogger("pipelines.main")
ATTACKS = ("fgsm", "pgd", "dgn")


@dataclass(frozen=True)
class Params(train.Params, _params.Fanout):
    attacks: tuple[str, ...] = ATTACKS
    """Comma-separated attacks besides seed 000's preset (always run): fgsm, pgd, dgn."""
    dgn_losses: tuple[str, ...] = ("nce", "lrp", "susp")
    """Comma-separated DGN losses, one attack each (with attacks containing dgn)."""
    eps: float | None = None
    """L∞ budget of fgsm, pgd, dgn and advtrain; auto: 0.3 for digits/mnist/fashion, else
    8/255."""
    pgd_steps: int = 20
    """Iterations of pgd (and of evaluate's adaptive pgd)."""
    dgn_epochs: int | None = None
    """DGN epochs per class; auto: seed 004's for its datasets, 100 on digits."""
    metrics: tuple[str, ...] = ("all",)
    """Guidance metrics to score and retrain with: all, or comma-separated of nc, lsa, dsa,
    deepgini, entropy, random."""
    configs: tuple[str, ...] = ("c1", "c2", "c3")
    """Retraining configurations, comma-separated (one retrain stage each)."""
    retrain_steps: int | None = None
    """Budget steps per retraining curve; auto: 5 on digits, 20 (the seed's) otherwise."""
    budgets: str = "auto"
    """auto (retrain_steps) or seed: seed 000's own budget sizes per dataset and configuration
    (not on digits; retrain_steps must then be auto)."""
    retrain_seeds: int = 3
    """Repetitions of every retraining curve (the CIs need at least 2)."""
    margin: float = retraining.MARGIN
    """retrain: equivalence margin of the verdicts' TOST, in accuracy (0.01 = one percentage
    point)."""
    originals: int = 1
    """Original models the retraining starts from: K > 1 trains K − 1 more (train init_seed
    seed + 1, …, on the same split), each with its own preset attack and metric stage, and
    the retraining's intervals then cover the variation between originals (their unit is the
    original, so they need K ≥ 2; 1: they speak about the one original)."""
    retrain_epochs: int | None = None
    """Epochs of every retraining; auto: retrain's (the dataset's training default; 10 on
    digits)."""
    warm_start: bool = False
    """Retraining steps continue from the previous step (faster; not seed 000's protocol)."""
    workers: int | None = None
    """Processes that retrain in parallel on the CPU; auto: one per core up to 4, 1 on CUDA."""
    advtrain_mode: str = "static"
    """static (seed 004: each attack's adversarial train set) or online (regenerated while
    training; the preset, a fixed mix, is then left out)."""
    alpha: float = 0.5
    """advtrain: weight of the clean loss, α·CE(clean) + (1 − α)·CE(adversarial)."""
    adaptive: tuple[str, ...] = ("pgd", "autoattack")
    """evaluate: attacks crafted against every model itself (fgsm, pgd, apgd-ce, apgd-t, fab-t,
    square, autoattack), or none; pgd (pgd_steps) beside AutoAttack shows what the ensemble
    adds."""
    apgd_steps: int = 100
    """evaluate: iterations of APGD and FAB (in AutoAttack and the ε-curve); AutoAttack's 100."""
    adaptive_dgn_epochs: int = 10
    """evaluate: epochs each DGN attack's generators train further against every model (its
    adaptive column); 0: none."""
    register: bool = True
    """Register the study's models (the original, every adversarially trained model and each
    retrain run's best) as versions of the registered model named like the study's
    experiment, with aliases original and most-robust (the highest worst-case robust accuracy
    in evaluate's adaptive matrix)."""
    pgd_at: bool = True
    """Add one online PGD-AT model (Madry et al.: α = 0, PGD regenerated per batch) to the
    study, so every matrix has a row meant to resist adaptive attacks."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_fanout()
        for a in self.attacks:
            _cli.check_choice("attacks", a, ATTACKS)
        if "dgn" in self.attacks and not self.dgn_losses:
            raise ConfigError("dgn_losses must name at least one loss when attacks has dgn")
        for loss in self.dgn_losses:
            _cli.check_choice("dgn_losses", loss, dgn.LOSSES)
        for m in self.metrics or ("",):
            _cli.check_choice("metrics", m, ("all", *guidance.METRICS))
        if not self.configs:
            raise ConfigError("configs must name at least one of c1, c2, c3")
        for c in self.configs:
            _cli.check_choice("configs", c, retraining.CONFIGS)
        _cli.check_choice("advtrain_mode", self.advtrain_mode, advtrain.MODES)
        evaluate.Params(adaptive=self.adaptive)  # its one-line errors, before any stage
        for name in ("pgd_steps", "dgn_epochs", "retrain_steps", "retrain_seeds", "originals"):
            _cli.check_min(name, getattr(self, name), 1)
        _cli.check_min("apgd_steps", self.apgd_steps, 1)
        _cli.check_min("adaptive_dgn_epochs", self.adaptive_dgn_epochs, 0)
        for name in ("retrain_epochs", "workers"):
            _cli.check_min(name, getattr(self, name), 1)
        if self.eps is not None:
            check_eps(self.eps)
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1], but got alpha={self.alpha}")
        if self.retrain_seeds < 2:
            log.warning("retrain_seeds=%d: the metric ranking has no CIs", self.retrain_seeds)


def main(p: Params) -> str:
    """Run the study; return the parent run id."""
    stages = _study.plan(p)
    with tracking.stage(
        "main", _cli.as_dict(p), dataset=p.dataset, force=True, quiet=p.quiet,
        experiment=p.experiment, run_name=f"main {p.dataset}",
    ) as run:  # fmt: skip
        ids: dict[str, str] = {}
        if p.engine == "local":
            for i, s in enumerate(stages, start=1):
                log.info("study stage %d/%d: %s", i, len(stages), s.name)
                with run.phase(s.name):
                    ids[s.name] = s.run(s.params(ids))
                run.set_tags({f"robust.child.{s.name}": ids[s.name]})
        else:
            with _fanout.connected(p, logs=True) as uri, run.phase("stages"):
                for i, (name, run_id) in enumerate(
                    _fanout.run_study(stages, run, uri, p.device), 1
                ):
                    log.info("study stage %d/%d done: %s (run %s)", i, len(stages), name, run_id)
                    ids[name] = run_id
        most = results.most_robust(ids["evaluate"]) if "evaluate" in ids else None
        if p.register:
            with run.phase("register"):
                _register(run.run_id, ids, most)
        with run.phase("report"):
            written = results.write_study_report(run.run_id, run.outdir / "report", logged=True)
            run.log_artifacts(run.outdir / "report")
            key_results = results.study_metrics(run.run_id)
            run.log_metrics(key_results)
            run.describe(*_findings(p, ids, key_results, most))
        log.info(
            "study on %s done: %d stages; report %s (run %s)",
            p.dataset,
            len(stages),
            ", ".join(w.name for w in written if w.suffix in (".md", ".html")),
            run.run_id,
        )
        return run.run_id


def _column(kind: str) -> str:
    """A column's kind as the matrices label it: ``adaptive-dgn-nce`` → ``adaptive dgn-nce``,
    ``worst_case`` → ``worst case``."""
    return kind.replace("_", " ").replace("adaptive-", "adaptive ", 1)


def _findings(
    p: Params, ids: dict[str, str], key: dict[str, float], most: dict[str, Any] | None
) -> list[str]:
    """The study run's description: its key results in words (``most``: the most robust
    model, :func:`robust.results.most_robust`) and a link to every child."""
    notes = tracking.notes
    lines = []
    if (clean := key.get("study/clean_accuracy/original")) is not None:
        lines.append(f"Original model: clean test accuracy **{notes.percent(clean)}**.")
    best = {k.rsplit("/", 1)[1]: v for k, v in key.items() if "/robust_accuracy_best/" in k}
    if best:
        lines.append(
            "Best robust accuracy over the study's models, per adaptive attack: "
            + ", ".join(f"{_column(a)} {notes.percent(v)}" for a, v in best.items())
            + "."
        )
    if most is not None:
        lines.append(
            f"Most robust model: **{notes.run_link(most['run_id'], most['label'])}**, "
            f"{notes.percent(most['accuracy'])} under {most['column']}"
            + (" (alias `most-robust`)." if p.register else ".")
        )
    for c in p.configs:
        if f"study/{c}/best_vs_random" in key:
            lines.append(
                f"Retraining {c}: {int(key[f'study/{c}/n_beat_random'])} metrics beat random, "
                f"{int(key[f'study/{c}/n_worse_than_random'])} worse (Holm over the study); "
                f"best mean difference {key[f'study/{c}/best_vs_random']:+.4f}."
            )
        elif f"retrain.{c}" in ids:
            lines.append(f"Retraining {c}: no budget within the headline's pool fraction.")
    children = [f"{name}: {notes.run_link(run_id)}" for name, run_id in ids.items()]
    return [
        f"**Study on {p.dataset}**: {len(ids)} stages; the full report is `report.html` "
        "(and `report.md`) among this run's artifacts.",
        notes.bullets(lines),
        "Stages:\n\n" + notes.bullets(children),
    ]


def _register(parent: str, ids: dict[str, str], most: dict[str, Any] | None) -> None:
    """Register every model stage's model under the study's experiment name and set the
    aliases ``original`` and ``most-robust`` (``most``; None without an adaptive matrix)."""
    registry = tracking.registry
    name = registry.registered_name(parent)
    for stage, run_id in ids.items():
        if stage.split(".")[-1] == "train" or stage.startswith(("advtrain.", "retrain.")):
            registry.register(run_id, name)
    registry.set_alias(name, "original", ids["train"])
    if most is not None:
        registry.set_alias(name, "most-robust", most["run_id"])
        log.info(
            "most robust model: %s (%s %.1f %%), registered as %s@most-robust", most["label"],
            most["column"], 100 * most["accuracy"], name,
        )  # fmt: skip


if __name__ == "__main__":
    _cli.entry(main, Params)
