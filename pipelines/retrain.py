"""Retrain on growing budgets of a guidance-ordered pool under seed 000's configurations.

Inputs: ``metric_run`` (default the newest FINISHED one for ``dataset``): its orders and pool;
its attack run (adversarial train inputs of the pool; its adversarial **test** set, which must
exist, for evaluation); its source model and that train run's dataset. Per selected metric and
seed s (``seed`` … ``seed + seeds − 1``) a model is trained per budget step
(``robust.retraining``): ``config=c1`` fresh weights, ``c2`` the original's, both on the top-k
of the whole pool; ``c3`` the original's on the top-k of its adversarial part. Each model is
scored on the clean test split, the adversarial test set and both combined.
Params: see ``Params``.
Metrics, per metric M and seed s, with step = number of training inputs (0 = the original
model, c2/c3): ``M/seed<s>/accuracy_clean``, ``…/accuracy_adversarial``,
``…/accuracy_combined``, ``…/precision_macro``, ``…/recall_macro`` (combined set),
``…/fit_s``; ``M/accuracy_combined_mean`` (over seeds). Per M, mean and 95 % CI bounds over
seeds (``_mean``, ``_ci_low``, ``_ci_high``) of ``M/best_accuracy``, ``M/best_n_inputs``,
``M/auc``, ``M/fit_s``; ``time/M_s`` and ``energy/M_kwh`` (``time/workers_s``: starting the
worker processes, when ``workers`` > 1); ``original/<quantity>``. The
headline: ``headline/M_vs_random_mean|_ci_low|_ci_high|_verdict`` (+1 beats, −1 worse, 0 no
significant difference).
Artifacts: ``figures/<dataset>_<config>_accuracy.png`` and ``.svg``; ``tables/curves.csv``
(one row per metric, seed and step) and ``tables/summary.csv``; ``summary.json`` and
``summary.md``; ``best/<M>/`` (the best retrained model, safetensors + spec) and
``best/best.json``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass

from safetensors.torch import load_file
from tqdm.auto import tqdm

from pipelines import _cli, _upstream
from robust import data, guidance, models, retraining, tracking
from robust.data import Split
from robust.errors import ConfigError
from robust.training import OPTIMIZERS, TrainConfig, defaults_for
from robust.utils import DEVICES, resolve_device

STEPS = {"digits": 5}
"""Budget steps when ``steps`` is auto: the seed's 20 (≈ 5 % each), 5 on digits (minutes)."""
log = logging.getLogger("pipelines.retrain")  # not __main__ under python -m


@dataclass(frozen=True)
class Params:
    dataset: str = "digits"
    """Dataset of the metric run (used to find the newest one when metric_run is auto)."""
    metric_run: str | None = None
    """Metric run whose orders and pool are used; auto: the newest FINISHED one on dataset."""
    config: str = "c2"
    """c1 (fresh weights), c2 (original weights, fresh optimizer) or c3 (original weights,
    adversarial inputs only)."""
    metrics: tuple[str, ...] = ("all",)
    """all (every metric the metric run scored) or comma-separated of those."""
    steps: int | None = None
    """Budget steps m, 2m, …, (steps − 1)·m, whole pool (m = round(N / steps)); auto: 20 (the
    seed's ≈ 5 % steps), 5 on digits."""
    seeds: int = 3
    """Repetitions per metric and step, with seeds seed, seed + 1, …"""
    epochs: int | None = None
    """Epochs of every training; auto: the dataset's default (as the original's training)."""
    lr: float | None = None
    """Learning rate; auto: the dataset's default (1e-3 everywhere)."""
    batch_size: int | None = None
    """Mini-batch size; auto: the dataset's default."""
    optimizer: str | None = None
    """rmsprop, adam or sgd, always a fresh one; auto: the dataset's default."""
    warm_start: bool = False
    """Chain the steps: each continues from the previous step's model on the inputs it adds
    (faster; not the seed's protocol)."""
    redraw_random: bool = True
    """random: a fresh random order per seed (the metric run's own for its seed); false: the
    metric run's one order for every seed."""
    headline_budget: float = 0.3
    """The headline compares each metric with random at budgets ≤ this fraction of the pool."""
    seed: int = 0
    """First seed: c1's initial weights, shuffling, dropout (and random's order)."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    workers: int | None = None
    """Processes that fit models in parallel on the CPU; auto: one per core up to 4, 1 on CUDA.
    Results do not depend on it except for float rounding of the thread count."""
    data_dir: str | None = None
    """Dataset directory; auto: the train run's."""
    force: bool = False
    """Recompute even if an identical FINISHED run exists."""
    quiet: bool = False
    """No progress bar."""

    def __post_init__(self) -> None:
        _cli.check_choice("dataset", self.dataset, data.DATASETS)
        _cli.check_choice("config", self.config, retraining.CONFIGS)
        for metric in self.metrics or ("",):
            _cli.check_choice("metrics", metric, ("all", *guidance.METRICS))
        if self.optimizer is not None:
            _cli.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _cli.check_choice("device", self.device, DEVICES)
        for name in ("steps", "seeds", "epochs", "batch_size", "workers"):
            _cli.check_min(name, getattr(self, name), 1)
        _cli.check_min("lr", self.lr, 0, strict=True)
        _cli.check_min("seed", self.seed, 0)
        if not 0 < self.headline_budget <= 1:
            raise ConfigError(
                "headline_budget must be in (0, 1], but got "
                f"headline_budget={self.headline_budget}"
            )

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

    def training(self) -> TrainConfig:
        """Epochs, lr, batch size and optimizer with every auto resolved."""
        d = defaults_for(self.dataset)
        return TrainConfig(
            self.optimizer or d.optimizer,
            self.lr or d.lr,
            self.epochs or d.epochs,
            self.batch_size or d.batch_size,
        )


def main(p: Params) -> str:
    """Run (or reuse) the retrain stage; return its run id."""
    metric_run = _upstream.metric_run(p.metric_run, p.dataset)
    run_data = tracking.get_run(metric_run, stage="metric")
    info = run_data.data
    attack_run, model_run = info.tags["robust.upstream.attack"], info.tags["robust.upstream.model"]
    metrics = p.selected(tracking.params_of(run_data)["metrics"].split(","), metric_run)
    _require_test_set(metric_run, attack_run)
    n_clean, n_adv = (int(info.metrics[f"pool/n_{k}"]) for k in ("clean", "adversarial"))
    pool_size = n_adv if p.config == "c3" else n_clean + n_adv
    if pool_size == 0:
        raise ConfigError(
            f"config=c3 retrains on adversarial inputs, but metric run "
            f"{metric_run}'s pool has none"
        )
    steps = p.steps or STEPS.get(p.dataset, 20)
    sizes = retraining.budgets(pool_size, steps)  # checks 1 ≤ steps ≤ pool size
    train = p.training()
    device = resolve_device(p.device)
    workers = p.workers or retraining.auto_workers(device)  # resolved: a stable reuse key
    if workers > 1 and device.type == "cuda":
        raise ConfigError(
            f"workers fit on the CPU, so more than 1 needs device=cpu, but got workers={workers} "
            "with device=cuda"
        )
    params = _cli.as_dict(p) | {
        "metric_run": metric_run,
        "metrics": metrics,
        "steps": steps,
        "epochs": train.epochs,
        "lr": train.lr,
        "batch_size": train.batch_size,
        "optimizer": train.optimizer,
        "workers": workers,
    }
    upstream = {"metric": metric_run, "attack": attack_run, "model": model_run}
    with tracking.stage(
        "retrain", params, dataset=p.dataset, upstream=upstream, force=p.force, quiet=p.quiet
    ) as run:
        if run.reused:
            return run.run_id
        run.log_params({"pool_size": pool_size, "budgets": sizes.tolist()})
        if not retraining.budget_mask(sizes, pool_size, p.headline_budget).any():
            log.warning(
                "no budget step is within headline_budget=%s: no headline", p.headline_budget
            )
        with run.phase("load"):
            ds = _upstream.dataset_of(model_run, p.data_dir)
            original = _upstream.model_of(model_run, str(device))
            pool, orders = _pool(metric_run, attack_run, ds)
            adv_test = _upstream.adversarial_set(attack_run, "test")
            tests = retraining.EvalSets(ds.test, Split(adv_test["x"], adv_test["y"].long()))
            num_classes = ds.num_classes
        original_scores = retraining.evaluate_model(original, tests, num_classes)
        run.log_metrics({f"original/{k}": v for k, v in original_scores.items()})

        seeds = range(p.seed, p.seed + p.seeds)
        bar = tqdm(
            total=len(metrics) * p.seeds * steps,
            unit="model",
            file=sys.stderr,
            disable=p.quiet or not sys.stderr.isatty(),
        )
        results = {}
        with contextlib.ExitStack() as stack:
            fitters = retraining.Workers(workers, original, pool, tests, ds.val, train, device)
            if workers > 1:
                with run.phase("workers"):  # spawn the processes once, for every metric
                    stack.enter_context(fitters)
            for m in metrics:
                with run.phase(m):  # the metric's fits run in parallel within it
                    results[m] = retraining.retrain_seeds(
                        original,
                        pool,
                        {s: _order(m, s, orders, len(pool), p.redraw_random) for s in seeds},
                        p.config,
                        steps,
                        train=train,
                        val=ds.val,
                        tests=tests,
                        warm_start=p.warm_start,
                        device=device,
                        workers=fitters,
                        on_point=lambda point, _, m=m: _log_point(run, bar, m, point),
                    )
        bar.close()

        with run.phase("report"):
            curves = {m: retraining.Curves.from_points(r.points) for m, r in results.items()}
            for m, c in curves.items():
                for k, v in zip(c.n_inputs.tolist(), c.mean(), strict=True):
                    run.log_metrics({f"{m}/accuracy_combined_mean": v}, step=k)
            doc = retraining.summary_document(curves, pool_size, budget=p.headline_budget)
            for m, summary in doc["metrics"].items():
                summary |= {k: run.phases[m][k] for k in ("time_s", "energy_kwh")}
            doc["original"] = original_scores
            doc["best_models"] = {m: r.best.row() for m, r in results.items()}
            run.log_metrics(retraining.flat_metrics(doc))
            if doc["headline_note"]:
                log.warning(doc["headline_note"])
            for h in doc["headline"].values():
                log.info(h["line"])
            context = {
                "dataset": p.dataset,
                "config": f"{p.config}: {retraining.CONFIGS[p.config]}",
                "runs": f"metric {metric_run}, attack {attack_run}, model {model_run}",
                "pool": f"{n_clean} clean + {n_adv} adversarial inputs; retrained on {pool_size}",
                "budgets": ", ".join(map(str, sizes.tolist())),
                "seeds": ", ".join(map(str, seeds)),
                "training": f"{train.optimizer} lr {train.lr}, {train.epochs} epochs, batch "
                f"{train.batch_size}, warm_start={str(p.warm_start).lower()}",
                "test sets": f"{len(ds.test)} clean + {len(tests.adversarial)} adversarial",
                "original model": ", ".join(f"{k} {v:.4f}" for k, v in original_scores.items()),
            }
            report = retraining.write_report(
                run.outdir / "report",
                curves,
                doc,
                title=f"Guided retraining: {p.dataset}, {p.config}",
                figure=f"{p.dataset}_{p.config}_accuracy",
                context=context,
            )
            run.log_artifacts(report)
            for m, r in results.items():
                directory = run.outdir / "best" / m
                models.save(r.best_model, directory, dataset=ds.name, classes=ds.classes)
                run.log_artifacts(directory, f"best/{m}")
            run.log_dict(doc["best_models"], "best/best.json")
        return run.run_id


def _order(metric: str, seed: int, orders: dict, n: int, redraw_random: bool):
    """The order seed ``seed`` retrains ``metric`` from: the metric run's, or for random with
    ``redraw_random`` a fresh one drawn as the metric stage draws its own (equal for its seed)."""
    if metric == "random" and redraw_random:
        return guidance.order(guidance.random_scores(n, seed), seed)
    return orders[metric]


def _log_point(run: tracking.StageRun, bar, metric: str, point: retraining.Point) -> None:
    """Log one curve point (step = number of training inputs) and advance the bar."""
    keys = dict(point.scores) | ({"fit_s": point.fit_s} if point.step else {})
    run.log_metrics({f"{metric}/seed{point.seed}/{k}": v for k, v in keys.items()}, point.n_inputs)
    if point.step:
        bar.update()


def _require_test_set(metric_run: str, attack_run: str) -> None:
    """Raise a ConfigError unless the metric run's attack run attacked the test split."""
    splits = _upstream.attacked_splits(attack_run)
    if "test" not in splits:
        raise ConfigError(
            f"retrain evaluates on the adversarial test set of metric run {metric_run}'s attack "
            f"run {attack_run}, but it attacked splits={','.join(splits)} only; attack the test "
            "split too (-e attack -P splits=train,test), score that attack run (-e metric) and "
            "pass its metric_run"
        )


def _pool(metric_run: str, attack_run: str, ds: data.Dataset):
    """The metric run's pool (its inputs gathered from the train split and the attack run's
    adversarial train set) and its orders (metric → (N,) int64)."""
    files = {
        name: load_file(tracking.download_artifacts(metric_run, f"guidance/{name}.safetensors"))
        for name in ("pool", "order")
    }
    adv = _upstream.adversarial_set(attack_run, "train")
    described = files["pool"]
    pool = retraining.Pool.assemble(
        described["source"],
        described["index"],
        ds.train,
        Split(adv["x"], adv["y"].long()),
        y=described["y"],
    )
    return pool, files["order"]


if __name__ == "__main__":
    _cli.entry(main, Params)
