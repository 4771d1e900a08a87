"""Score and order a pool of clean and adversarial training inputs by guidance metrics (seed 000).

Inputs: ``attack_run`` (an attack run that attacked the train split; default the newest
FINISHED one for ``dataset``), its source model (the attack run's ``model_run``) and that train
run's dataset. The pool is the clean training split followed by the attack run's adversarial
train inputs (``pool=train_and_adversarial``, seed 000), or only the latter
(``pool=adversarial``). LSA and DSA take the clean training split's traces, grouped by the
model's predicted classes, as reference; a clean input is not its own DSA neighbour, nor (with
``self_exclusion``, the default) part of its own LSA density.
Params: see ``Params``; metrics are nc, lsa, dsa, deepgini, entropy and random
(``robust.guidance``).
Metrics, per metric M: ``M/mean``, ``M/std``, ``M/min``, ``M/max``, ``M/median`` (over finite
scores), ``M/n_inf`` (when some are infinite: DSA with b = 0), ``M/clean_mean`` and
``M/adversarial_mean`` (when the pool has both parts), ``M/samples_per_s``, ``time/M_s`` and
``energy/M_kwh``; ``nc/set_coverage`` (the pool), ``nc/set_coverage_clean``,
``nc/set_coverage_adversarial``; ``pool/n_clean``, ``pool/n_adversarial``; ``time/traces_s``.
Artifacts: ``guidance/scores.safetensors`` (float64 (N,) scores per metric),
``guidance/order.safetensors`` (int64 (N,) pool positions per metric, highest score first,
ties by seed), ``guidance/pool.safetensors`` (``source`` 0 clean / 1 adversarial, ``index``,
``y``, ``pred``), ``guidance/pool.json`` (lineage, sizes, key descriptions) and
``histograms/M.png`` (clean vs adversarial).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pipelines import _cli, _params
from robust import guidance, models, tracking
from robust.errors import ConfigError
from robust.evaluation import plot_score_histogram, score_summary
from robust.utils import resolve_device

log = logging.getLogger("pipelines.metric")  # not __main__ under python -m


@dataclass(frozen=True)
class Params(_params.Common):
    attack_run: str | None = None
    """Attack run whose adversarial train inputs join the pool; auto: the newest FINISHED one."""
    metrics: tuple[str, ...] = ("all",)
    """all, or comma-separated of nc, lsa, dsa, deepgini, entropy, random."""
    pool: str = "train_and_adversarial"
    """train_and_adversarial (the clean train split, then the adversarial one) or adversarial."""
    layer: tuple[str, ...] = ("last_hidden",)
    """Layer(s) traced for nc, lsa and dsa: last_hidden or comma-separated layer names."""
    threshold: float = 0.2
    """nc: a neuron is covered when its per-input min-max scaled value exceeds this."""
    var_threshold: float = 1e-5
    """lsa: neurons whose variance is below this in any class are dropped."""
    self_exclusion: bool = True
    """lsa: leave a clean input's own training trace out of its KDE (leave-one-out, as DSA
    always does); false: keep it, as seed 000, which made training inputs look unsurprising."""
    batch_size: int | None = None
    """Inputs per forward pass when tracing; auto: 1024."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for metric in self.metrics or ("",):
            _cli.check_choice("metrics", metric, ("all", *guidance.METRICS))
        _cli.check_choice("pool", self.pool, guidance.POOLS)
        if not self.layer:
            raise ConfigError(f"layer must name at least one layer, but got layer={self.layer}")
        if not 0 <= self.threshold < 1:
            raise ConfigError(f"threshold must be in [0, 1), but got threshold={self.threshold}")
        _cli.check_min("var_threshold", self.var_threshold, 0)
        _cli.check_min("batch_size", self.batch_size, 1)

    def selected(self) -> tuple[str, ...]:
        """The metrics to compute, in ``guidance.METRICS`` order (``all``: every one)."""
        return tuple(m for m in guidance.METRICS if "all" in self.metrics or m in self.metrics)


def main(p: Params) -> str:
    """Run (or reuse) the metric stage; return its run id."""
    up = tracking.Lineage(p.dataset)
    attack_run = up.attack_run(p.attack_run)
    model_run = up.source_model(attack_run)
    up.require_adversarial(attack_run, "train")
    metrics = p.selected()
    params = _cli.as_dict(p) | {
        "attack_run": attack_run,
        "model_run": model_run,
        "metrics": metrics,
    }
    upstream = {"attack": attack_run, "model": model_run}
    with tracking.stage(
        "metric", params, dataset=p.dataset, upstream=upstream, force=p.force, quiet=p.quiet,
        data=up.data_source(model_run, p.data_dir), experiment=p.experiment,
        run_name="metric " + ",".join(metrics),
    ) as run:  # fmt: skip
        if run.reused:
            return run.run_id
        device = resolve_device(p.device)
        with run.phase("load"):
            ds, model = up.model_and_data(model_run, p.data_dir, str(device))
            adv = up.adversarial(attack_run, "train")
        with_acts = not guidance.TRACE_METRICS.isdisjoint(metrics)
        kwargs = {"with_acts": with_acts, "batch_size": p.batch_size or 1024}
        with run.phase("traces"):  # the train split is always the LSA/DSA reference
            ref = models.traces(model, ds.train.x, p.layer, **kwargs)
            adv_traces = models.traces(model, adv["x"], p.layer, **kwargs)
        pool = guidance.assemble_pool(ref, adv_traces, ds.train.y, adv["y"], kind=p.pool)
        run.log_splits(ds, ("train",), model_run)
        run.log_adversarial_inputs(attack_run, {"train": len(adv["y"])}, ds)
        run.log_metrics(pool.sizes())
        options = {
            "threshold": p.threshold, "var_threshold": p.var_threshold, "seed": p.seed,
            "self_exclusion": p.self_exclusion,
        }  # fmt: skip
        ranked = {}
        for m in metrics:
            with run.phase(m):
                r = ranked[m] = guidance.rank(m, ref, pool, **options, device=device)
            if m == "nc":  # not part of ordering, so not in its time
                run.log_metrics(guidance.set_coverage_by_part(pool, p.threshold))
            log.info("%s: %d inputs scored and ordered in %.2f s", m, len(pool), r.seconds)
            parts = pool.parts(r.scores)
            summary = score_summary(parts) | {"samples_per_s": r.samples_per_s}
            run.log_metrics({f"{m}/{k}": v for k, v in summary.items()})
            plot_score_histogram(parts, m, run.outdir / f"{m}.png")
            run.log_artifact(run.outdir / f"{m}.png", "histograms")
        run.log_tensors("guidance/scores", **{m: r.scores for m, r in ranked.items()})
        run.log_tensors("guidance/order", **{m: r.order for m, r in ranked.items()})
        run.log_tensors("guidance/pool", **pool.tensors())
        lineage = {"attack_run": attack_run, "model_run": model_run}
        info = pool.describe(lineage, metrics=metrics, layer=p.layer, seed=p.seed)
        run.log_dict(info, "guidance/pool.json")
        sizes = pool.sizes()
        run.describe(
            f"**metric**: {len(pool)} inputs of the {p.pool} pool ("
            + ", ".join(f"{k.removeprefix('pool/n_')} {int(v)}" for k, v in sizes.items())
            + f") from {tracking.notes.run_link(attack_run)} scored and ordered by "
            + ", ".join(metrics)
            + f", on the activations of {tracking.notes.run_link(model_run)}.",
            "The orders feed `retrain`; score histograms per metric are under `histograms/`.",
        )
        return run.run_id


if __name__ == "__main__":
    _cli.entry(main, Params)
