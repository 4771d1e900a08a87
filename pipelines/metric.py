"""Score and order a pool of clean and adversarial training inputs by guidance metrics (seed 000).

Inputs: ``attack_run`` (an attack run that attacked the train split; default the newest
FINISHED one for ``dataset``), its source model (the attack run's ``model_run``) and that train
run's dataset. The pool is the clean training split followed by the attack run's adversarial
train inputs (``pool=train_and_adversarial``, seed 000), or only the latter
(``pool=adversarial``). LSA and DSA take the clean training split's traces, grouped by the
model's predicted classes, as reference; a clean input is not its own DSA neighbour.
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
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pipelines import _cli, _upstream
from robust import data, guidance, models, tracking
from robust.errors import ConfigError
from robust.evaluation import plot_score_histogram, predict, score_summary
from robust.utils import DEVICES, resolve_device

POOLS = ("train_and_adversarial", "adversarial")
TRACE_METRICS = frozenset({"nc", "lsa", "dsa"})
"""Metrics that need activation traces (the others need only the softmax probabilities)."""
POOL_KEYS = {
    "source": "0 = clean training input, 1 = adversarial input",
    "index": "clean: index into the train split; adversarial: index into the attack run's "
    "adversarial/train.safetensors (whose own index points into the train split)",
    "y": "true label",
    "pred": "the model's predicted class",
}
log = logging.getLogger("pipelines.metric")  # not __main__ under python -m


@dataclass(frozen=True)
class Params:
    dataset: str = "digits"
    """Dataset of the attack run (used to find the newest one when attack_run is auto)."""
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
    seed: int = 0
    """Seed of the random scores and of tie-breaking in every order."""
    batch_size: int | None = None
    """Inputs per forward pass when tracing; auto: 1024."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    data_dir: str | None = None
    """Dataset directory; auto: the train run's."""
    force: bool = False
    """Recompute even if an identical FINISHED run exists."""
    quiet: bool = False
    """Less logging."""

    def __post_init__(self) -> None:
        _cli.check_choice("dataset", self.dataset, data.DATASETS)
        for metric in self.metrics or ("",):
            _cli.check_choice("metrics", metric, ("all", *guidance.METRICS))
        _cli.check_choice("pool", self.pool, POOLS)
        _cli.check_choice("device", self.device, DEVICES)
        if not self.layer:
            raise ConfigError(f"layer must name at least one layer, but got layer={self.layer}")
        if not 0 <= self.threshold < 1:
            raise ConfigError(f"threshold must be in [0, 1), but got threshold={self.threshold}")
        _cli.check_min("var_threshold", self.var_threshold, 0)
        _cli.check_min("seed", self.seed, 0)
        _cli.check_min("batch_size", self.batch_size, 1)

    def selected(self) -> tuple[str, ...]:
        """The metrics to compute, in ``guidance.METRICS`` order (``all``: every one)."""
        return tuple(m for m in guidance.METRICS if "all" in self.metrics or m in self.metrics)


@dataclass(frozen=True)
class _Traces:
    """Activation traces (one (N, ...) tensor per layer, as the layer outputs it) and softmax
    probabilities."""

    acts: list[Tensor]
    probs: Tensor

    @property
    def pred(self) -> Tensor:
        return self.probs.argmax(1)

    @property
    def flat(self) -> Tensor:
        return torch.cat([a.flatten(1) for a in self.acts], dim=1)

    def __len__(self) -> int:
        return len(self.probs)

    def __add__(self, other: _Traces) -> _Traces:
        acts = [torch.cat(pair) for pair in zip(self.acts, other.acts, strict=True)]
        return _Traces(acts, torch.cat([self.probs, other.probs]))


def main(p: Params) -> str:
    """Run (or reuse) the metric stage; return its run id."""
    attack_run = _upstream.attack_run(p.attack_run, p.dataset)
    model_run = _upstream.model_of_attack(attack_run)
    _upstream.require_adversarial(attack_run, "train")
    metrics = p.selected()
    params = _cli.as_dict(p) | {
        "attack_run": attack_run,
        "model_run": model_run,
        "metrics": metrics,
    }
    with tracking.stage(
        "metric",
        params,
        dataset=p.dataset,
        upstream={"attack": attack_run, "model": model_run},
        force=p.force,
        quiet=p.quiet,
    ) as run:
        if run.reused:
            return run.run_id
        device = resolve_device(p.device)
        with run.phase("load"):
            ds = _upstream.dataset_of(model_run, p.data_dir)
            model = _upstream.model_of(model_run, str(device))
            adv = _upstream.adversarial_set(attack_run, "train")
        with_acts = bool(TRACE_METRICS.intersection(metrics))
        with run.phase("traces"):  # the train split is always the LSA/DSA reference
            ref = _traces(model, ds.train.x, p, with_acts)
            adv_traces = _traces(model, adv["x"], p, with_acts)
        # the pool: clean train inputs first (if any), then the adversarial ones
        n_clean, n_adv = (len(ref) if p.pool == "train_and_adversarial" else 0), len(adv["x"])
        pool = ref + adv_traces if n_clean else adv_traces
        self_index = torch.cat([torch.arange(n_clean), torch.full((n_adv,), -1)])
        run.log_metrics({"pool/n_clean": n_clean, "pool/n_adversarial": n_adv})
        scores, orders = {}, {}
        for m in metrics:
            with run.phase(m):
                t0 = time.perf_counter()
                scores[m] = _score(m, ref, pool, self_index, p, device)
                orders[m] = guidance.order(scores[m], p.seed)
                elapsed = time.perf_counter() - t0
            if m == "nc":  # not part of ordering, so not in its time
                run.log_metrics(_set_coverage(pool, ref, adv_traces, n_clean, p.threshold))
            log.info("%s: %d inputs scored and ordered in %.2f s", m, len(pool), elapsed)
            parts = {"clean": scores[m][:n_clean], "adversarial": scores[m][n_clean:]}
            parts = parts if n_clean else {"adversarial": scores[m]}
            summary = score_summary(parts) | {"samples_per_s": len(pool) / max(elapsed, 1e-9)}
            run.log_metrics({f"{m}/{k}": v for k, v in summary.items()})
            plot_score_histogram(parts, m, run.outdir / f"{m}.png")
            run.log_artifact(run.outdir / f"{m}.png", "histograms")
        run.log_tensors("guidance/scores", **scores)
        run.log_tensors("guidance/order", **orders)
        run.log_tensors(
            "guidance/pool",
            source=torch.cat([torch.zeros(n_clean), torch.ones(n_adv)]).long(),
            index=torch.cat([torch.arange(n_clean), torch.arange(n_adv)]),
            y=torch.cat([ds.train.y[:n_clean], adv["y"]]).long(),
            pred=pool.pred,
        )
        run.log_dict(
            {
                "attack_run": attack_run,
                "model_run": model_run,
                "pool": p.pool,
                "n_clean": n_clean,
                "n_adversarial": n_adv,
                "metrics": list(metrics),
                "layer": list(p.layer),
                "seed": p.seed,
                "pool_keys": POOL_KEYS,
                "scores": "one float64 (N,) tensor per metric, higher = look first",
                "order": "one int64 (N,) tensor per metric: pool positions, highest score "
                "first, ties in a seeded random order",
            },
            "guidance/pool.json",
        )
        return run.run_id


def _traces(model, x: Tensor, p: Params, with_acts: bool) -> _Traces:
    """Traces of each layer in ``p.layer`` (if wanted) and the softmax probabilities of x."""
    batch_size = p.batch_size or 1024
    names = p.layer if with_acts else ()
    acts = [  # kept in the layer's shape: NC counts a conv channel as one neuron
        models.activations(model, x, name, batch_size=batch_size, flatten=False) for name in names
    ]
    probs = torch.softmax(predict(model, x, batch_size=batch_size).double(), dim=1)
    return _Traces(acts, probs)


def _score(
    metric: str, ref: _Traces, pool: _Traces, self_index: Tensor, p: Params, device: torch.device
) -> np.ndarray:
    """One metric's (N,) scores of the pool; LSA and DSA against the clean train traces."""
    if metric == "nc":
        return guidance.neuron_coverage(pool.acts, p.threshold)
    if metric == "lsa":
        return guidance.lsa(
            ref.flat, ref.pred, pool.flat, pool.pred, p.var_threshold, device=device
        )
    if metric == "dsa":
        return guidance.dsa(
            ref.flat, ref.pred, pool.flat, pool.pred, self_index=self_index, device=device
        )
    if metric == "deepgini":
        return guidance.deepgini(pool.probs)
    if metric == "entropy":
        return guidance.softmax_entropy(pool.probs)
    return guidance.random_scores(len(pool), p.seed)


def _set_coverage(
    pool: _Traces, ref: _Traces, adv: _Traces, n_clean: int, threshold: float
) -> dict[str, float]:
    """DeepXplore's set-level neuron coverage of the pool and of each of its parts."""
    out = {"nc/set_coverage": guidance.set_coverage(pool.acts, threshold)}
    if n_clean:
        out["nc/set_coverage_clean"] = guidance.set_coverage(ref.acts, threshold)
    return out | {"nc/set_coverage_adversarial": guidance.set_coverage(adv.acts, threshold)}


if __name__ == "__main__":
    _cli.entry(main, Params)
