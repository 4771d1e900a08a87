"""Retrain on growing budgets of a guidance-ordered pool under seed 000's configurations.

Inputs: ``metric_run`` (default the newest FINISHED one for ``dataset``): its orders and pool;
its attack run (adversarial train inputs of the pool; its adversarial **test** set, which must
exist, for evaluation; its adversarial **val** set, when it has one, for selection); its
source model and that train run's dataset. Per selected metric and
seed s (``seed`` … ``seed + seeds − 1``) a model is trained per budget step
(``robust.retraining``): ``config=c1`` fresh weights, ``c2`` the original's, both on the top-k
of the whole pool; ``c3`` the original's on the top-k of its adversarial part. Each model is
scored on the clean test split, the adversarial test set and both combined, and on the
selection set (``select_on``): the best step and the saved best model are chosen on
validation accuracy, and the test numbers are reported at that choice.
Params: see ``Params``.
Metrics, per metric M and seed s, with step = number of training inputs (0 = the original
model, c2/c3): ``M/seed<s>/accuracy_clean``, ``…/accuracy_adversarial``,
``…/accuracy_combined``, ``…/precision_macro``, ``…/recall_macro`` (combined set),
``…/val_accuracy`` (the selection set; not with ``select_on=test``), ``…/fit_s``;
``M/accuracy_combined_mean``, ``M/accuracy_clean_mean``,
``M/accuracy_adversarial_mean`` (over seeds). Per M, mean and 95 % CI bounds over
seeds (``_mean``, ``_ci_low``, ``_ci_high``) of ``M/best_accuracy``, ``M/best_n_inputs``,
``M/auc``, ``M/fit_s``, ``M/auc_clean``, ``M/auc_adversarial`` (AUC of clean and of
adversarial test accuracy); ``time/M_s`` and ``energy/M_kwh`` (``time/workers_s``: starting the
worker processes, when ``workers`` > 1); ``original/<quantity>``. The
headline, per endpoint E (combined: no infix; ``clean``, ``adversarial``: ``_E``):
``headline/M_vs_random[_E]_mean|_ci_low|_ci_high`` (paired difference from random at budgets
≤ ``headline_budget``), ``…_p_value`` (paired t-test), ``…_p_holm`` (Holm-adjusted over this
run's metrics, per endpoint), ``…_p_tost|_p_tost_holm`` (TOST equivalence within ±``margin``),
``…_verdict`` (+1 beats, −1 worse, 0 neither; from the adjusted p-values at 0.05) and
``…_equivalent`` (1 when TOST shows equivalence, else 0: "inconclusive" is never
equivalence). Every seed retrains from the one original model, pool and order, so the
intervals speak about that original only.
Artifacts: ``figures/<dataset>_<config>_accuracy.png`` and ``.svg`` (combined), and
``…_accuracy_clean`` and ``…_accuracy_adversarial`` (each endpoint alone); ``tables/curves.csv``
(one row per metric, seed and step) and ``tables/summary.csv``; ``summary.json`` and
``summary.md``; ``best/<M>/`` (the best retrained model, safetensors + spec) and
``best/best.json``; the MLflow model ``retrain-<config>-<M>`` of the metric whose best model
scored highest on the selection set (tag ``robust.best_metric``; what ``register`` and
``main`` register).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from pipelines import _cli, _fanout, _params
from robust import guidance, retraining, tracking
from robust.errors import ConfigError
from robust.tracking.notes import percent
from robust.training import TrainConfig
from robust.utils import resolve_device

log = logging.getLogger("pipelines.retrain")  # not __main__ under python -m
SELECT_ON = ("auto", "val", "val_clean", "test")


@dataclass(frozen=True)
class Params(_params.Registering, _params.Training, _params.Fanout):
    metric_run: tuple[str, ...] | None = None
    """Metric run whose orders and pool are used; auto: the newest FINISHED one on dataset.
    Several (comma-separated), each on another independently trained original model (train
    seed) with a pool of the same size: the study retrains from each (seeds seed … for the
    first, the next ``seeds`` for the second, …) and its intervals and tests take the original
    as their unit (``main -P originals=K`` makes and passes them)."""
    config: str = "c2"
    """c1 (fresh weights), c2 (original weights, fresh optimizer) or c3 (original weights,
    adversarial inputs only)."""
    metrics: tuple[str, ...] = ("all",)
    """all (every metric the metric run scored) or comma-separated of those."""
    steps: int | None = None
    """Budget steps m, 2m, …, (steps − 1)·m, whole pool (m = round(N / steps)); auto: 20 (the
    seed's ≈ 5 % steps), 5 on digits."""
    budgets: str = "auto"
    """auto (``steps``) or seed: seed 000's own step size and number of sets for the dataset
    and config (``retraining.SEED_BUDGETS``; not for digits, and not with ``steps``)."""
    seeds: int = 3
    """Repetitions per metric and step, with seeds seed, seed + 1, …"""
    warm_start: bool = False
    """Chain the steps: each continues from the previous step's model on the inputs it adds
    (faster; not the seed's protocol)."""
    redraw_random: bool = True
    """random: a fresh random order per seed (the metric run's own for its seed); false: the
    metric run's one order for every seed."""
    select_on: str = "auto"
    """What the best step and the saved best model are chosen on: val (the clean validation
    split plus the attack run's adversarial validation set), val_clean (the clean validation
    split alone), test (the seed's choice, optimistic); auto: val when the attack run attacked
    the val split, else val_clean (with a warning). Test numbers are reported at the choice."""
    headline_budget: float = 0.3
    """The headline compares each metric with random at budgets ≤ this fraction of the pool."""
    margin: float = retraining.MARGIN
    """Equivalence margin of the headline's TOST, in accuracy (0.01 = one percentage point):
    "equivalent to random" only when the difference is shown to lie within ±margin."""
    workers: int | None = None
    """Processes that fit models in parallel on the CPU (engine=local); auto: one per core up to
    4, 1 on CUDA. Results do not depend on it except for float rounding of the thread count.
    With engine=ray every fit is a one-CPU task and the cluster decides how many run at once."""

    def __post_init__(self) -> None:
        if isinstance(self.metric_run, str):  # one run id from Python: a tuple of one
            object.__setattr__(self, "metric_run", (self.metric_run,))
        super().__post_init__()
        self.check_fanout()
        _cli.check_choice("config", self.config, retraining.CONFIGS)
        _cli.check_choice("budgets", self.budgets, retraining.BUDGETS)
        _cli.check_choice("select_on", self.select_on, SELECT_ON)
        if self.budgets == "seed":  # its one-line errors (digits, steps) before any work
            seed_n = retraining.seed_budget(self.dataset, self.config).n
            retraining.budget_sizes("seed", self.dataset, self.config, seed_n, self.steps)
        for metric in self.metrics or ("",):
            _cli.check_choice("metrics", metric, ("all", *guidance.METRICS))
        for name in ("steps", "seeds", "workers"):
            _cli.check_min(name, getattr(self, name), 1)
        if not 0 < self.headline_budget <= 1:
            raise ConfigError(
                "headline_budget must be in (0, 1], but got "
                f"headline_budget={self.headline_budget}"
            )
        if not 0 < self.margin < 1:
            raise ConfigError(f"margin must be in (0, 1), but got margin={self.margin}")

    def training(self) -> TrainConfig:
        """The training of every retraining: as the dataset's training defaults, except the
        epochs where :data:`robust.retraining.EPOCHS` sets them (10 on digits)."""
        t = super().training()
        epochs = retraining.default_epochs(self.dataset)
        if self.epochs is None and epochs is not None:
            t = dataclasses.replace(t, epochs=epochs)
        return t

    def selected(self, scored: list[str], metric_run: str) -> tuple[str, ...]:
        """The metrics to retrain, in ``guidance.METRICS`` order; each must have been scored."""
        wanted = scored if "all" in self.metrics else self.metrics
        for m in wanted:
            if m not in scored:
                raise ConfigError(
                    f"metrics must be among those metric run {metric_run} scored "
                    f"({', '.join(scored)}), but got metrics={m!r}"
                )
        return tuple(m for m in guidance.METRICS if m in wanted)


@dataclass(frozen=True)
class _Original:
    """One original model of the study: the metric run that scored its pool, the attack run and
    train run behind it, and its pool's parts."""

    metric_run: str
    attack_run: str
    model_run: str
    n_clean: int
    n_adversarial: int

    @classmethod
    def of(cls, up: tracking.Lineage, metric_run: str | None) -> _Original:
        metric_run = up.metric_run(metric_run)
        attack_run, model_run = up.behind_metric_run(metric_run)
        logged = up.run(metric_run).data.metrics
        n_clean, n_adv = (int(logged[f"pool/n_{k}"]) for k in ("clean", "adversarial"))
        return cls(metric_run, attack_run, model_run, n_clean, n_adv)


def _originals(up: tracking.Lineage, p: Params) -> tuple[list[_Original], tuple[str, ...]]:
    """The study's originals (one per metric run) and the metrics to retrain, checked: distinct
    train runs, pools of one size, every metric scored by every metric run."""
    originals = [_Original.of(up, m) for m in (p.metric_run or (None,))]
    first = originals[0]
    metrics = p.selected(up.params(first.metric_run)["metrics"].split(","), first.metric_run)
    for o in originals[1:]:
        p.selected(up.params(o.metric_run)["metrics"].split(","), o.metric_run)
        if (o.n_clean, o.n_adversarial) != (first.n_clean, first.n_adversarial):
            raise ConfigError(
                "metric_run must name metric runs whose pools have one size, but "
                f"{first.metric_run} has {first.n_clean} + {first.n_adversarial} and "
                f"{o.metric_run} {o.n_clean} + {o.n_adversarial} inputs"
            )
    models = [o.model_run for o in originals]
    if len(set(models)) < len(models):
        raise ConfigError(
            "metric_run must name metric runs on distinct original models (train runs), but "
            f"they score models {', '.join(models)}"
        )
    return originals, metrics


@_params.registering
def main(p: Params) -> str:
    """Run (or reuse) the retrain stage (with ``register``, register its model); return its
    run id."""
    up = tracking.Lineage(p.dataset)
    originals, metrics = _originals(up, p)
    first = originals[0]
    pool_size = retraining.training_pool_size(
        p.config, first.n_clean, first.n_adversarial, metric_run=first.metric_run
    )
    sizes = retraining.budget_sizes(p.budgets, p.dataset, p.config, pool_size, p.steps)
    if p.budgets == "seed" and pool_size != retraining.seed_budget(p.dataset, p.config).n:
        log.warning("budgets=seed on a pool of %d inputs, not the seed's", pool_size)
    steps = tuple(sizes.tolist())  # the sizes themselves (retraining.budgets takes either)
    train = p.training()
    device = resolve_device(p.device)
    workers = retraining.resolve_workers(p.workers, device)  # resolved: a stable reuse key
    select_on = _select_on(p.select_on, {o.attack_run: up.splits(o.attack_run) for o in originals})
    params = _cli.as_dict(p.with_training_defaults()) | {
        "metric_run": tuple(o.metric_run for o in originals), "metrics": metrics,
        "steps": len(sizes), "workers": workers, "select_on": select_on,
    }  # fmt: skip
    upstream = {}
    for k, o in enumerate(originals):  # the first original's roles keep their plain names
        tail = "" if k == 0 else f".{k + 1}"
        upstream |= {f"metric{tail}": o.metric_run, f"attack{tail}": o.attack_run}
        upstream[f"model{tail}"] = o.model_run
    with tracking.stage(
        "retrain", params, dataset=p.dataset, upstream=upstream, force=p.force, quiet=p.quiet,
        data=up.data_source(first.model_run, p.data_dir), experiment=p.experiment,
        run_name=f"retrain {p.config}"
        + (f" × {len(originals)} originals" if len(originals) > 1 else ""),
    ) as run:  # fmt: skip
        if run.reused:
            return run.run_id
        run.log_params({"pool_size": pool_size, "budget_sizes": sizes.tolist()})
        if not retraining.budget_mask(sizes, pool_size, p.headline_budget).any():
            log.warning(
                "no budget step is within headline_budget=%s: no headline", p.headline_budget
            )
        parts, scores, all_seeds = [], [], []
        for k, o in enumerate(originals):
            tail = "" if k == 0 else f".original{k + 1}"  # phases per original
            with run.phase(f"load{tail}"):
                ds, original = up.model_and_data(o.model_run, p.data_dir, str(device))
                described, logged = up.guidance(o.metric_run)
                train_adv = up.adversarial(o.attack_run, "train")
                pool = retraining.pool_from(described, ds.train, train_adv)
                val_adv = up.adversarial(o.attack_run, "val") if select_on == "val" else None
                test_adv = up.adversarial(o.attack_run, "test")
                tests = retraining.eval_sets(
                    ds.test, test_adv, val=None if select_on == "test" else ds.val,
                    val_adversarial=val_adv,
                )  # fmt: skip
            used = {"train": train_adv, "val": val_adv, "test": test_adv}
            splits = ("train", "test") if select_on == "test" else ("train", "val", "test")
            run.log_splits(ds, splits, o.model_run)
            run.log_adversarial_inputs(
                o.attack_run, {s: len(a["y"]) for s, a in used.items() if a is not None}, ds
            )
            scores.append(retraining.evaluate_model(original, tests, ds.num_classes))
            first_seed = p.seed + k * p.seeds  # distinct seeds per original: distinct keys
            seeds = range(first_seed, first_seed + p.seeds)
            all_seeds += seeds
            orders = retraining.seed_orders(
                metrics, seeds, logged, len(pool), redraw_random=p.redraw_random
            )
            with _fanout.connected(p):  # phases "workers" (unless in process) and each metric
                parts.append(
                    retraining.retrain_metrics(
                        original, pool, orders, p.config, steps, train=train, val=ds.val,
                        tests=tests, warm_start=p.warm_start, device=device, workers=workers,
                        engine=p.engine, address=p.cluster,
                        phase=lambda name, t=tail: run.phase(f"{name}{t}"),
                        log_metrics=run.log_metrics, progress=not p.quiet, original_index=k,
                    )
                )  # fmt: skip
        original_scores = {q: sum(s[q] for s in scores) / len(scores) for q in scores[0]}
        run.log_metrics({f"original/{q}": v for q, v in original_scores.items()})
        if len(originals) > 1:
            for k, s in enumerate(scores, start=1):
                run.log_metrics({f"original{k}/{q}": v for q, v in s.items()})
        results = retraining.merge_originals(parts)
        costs = {
            m: {
                c: sum(v[c] for name, v in run.phases.items() if name.split(".")[0] == m)
                for c in ("time_s", "energy_kwh")
            }
            for m in metrics
        }
        with run.phase("report"):
            context = retraining.report_context(
                dataset=p.dataset, config=p.config, upstream=upstream, n_clean=first.n_clean,
                n_adversarial=first.n_adversarial, budgets=sizes.tolist(), seeds=all_seeds,
                train=train, warm_start=p.warm_start, tests=tests, original=original_scores,
                select_on=select_on,
            )  # fmt: skip
            if len(originals) > 1:
                context["original model"] = (
                    f"mean over {len(originals)} originals: {context['original model']}"
                )
            doc = retraining.write_study(
                run.outdir / "report", results, pool_size, budget=p.headline_budget,
                original=original_scores, costs=costs, context=context,
                title=f"Guided retraining: {p.dataset}, {p.config}",
                figure=f"{p.dataset}_{p.config}_accuracy", dataset=ds.name, classes=ds.classes,
                log_metrics=run.log_metrics, margin=p.margin,
            )  # fmt: skip
            run.log_artifacts(run.outdir / "report")
        with run.phase("save"):  # the best of the best models, for the model registry
            top = retraining.top_metric(results)
            run.log_mlflow_model(results[top].best_model, ds, f"retrain {p.config} {top}")
            run.set_tags({"robust.best_metric": top})
        best = results[top].best
        heads = [h["line"] for h in doc.get("headline", {}).values()]
        run.describe(
            f"**retrain {p.config}** on {p.dataset}: {', '.join(metrics)} each retrained at "
            f"{len(sizes)} budgets ({sizes[0]}–{sizes[-1]} of {pool_size} inputs) × "
            f"{len(all_seeds) // len(originals)} seeds from {len(originals)} original(s) "
            f"({', '.join(tracking.notes.run_link(o.metric_run) for o in originals)}).",
            "Combined clean + adversarial test accuracy against random (Holm-adjusted, "
            "verdicts as in `summary.md`):\n\n"
            + (tracking.notes.bullets(heads) if heads else doc.get("headline_note") or "none"),
            f"Best model: **{top}** at {best.n_inputs} inputs, chosen on {select_on}; test "
            f"accuracy clean {percent(best.scores['accuracy_clean'])}, adversarial "
            f"{percent(best.scores['accuracy_adversarial'])}.",
        )  # fmt: skip
        return run.run_id


def _select_on(wanted: str, splits: dict[str, list[str]]) -> str:
    """``select_on`` resolved: auto is val when every attack run (→ its splits) attacked the
    val split, else val_clean (warned: the adversarial endpoint then plays no part in the
    choice)."""
    if wanted != "auto":
        return wanted
    lacking = {run: s for run, s in splits.items() if "val" not in s}
    if not lacking:
        return "val"
    for attack_run, s in lacking.items():
        log.warning(
            "attack run %s has no adversarial val set (splits=%s): the best step is chosen on "
            "the clean validation split only; attack with -P splits=train,val,test to select "
            "on both", attack_run, ",".join(s),
        )  # fmt: skip
    return "val_clean"


if __name__ == "__main__":
    _cli.entry(main, Params)
