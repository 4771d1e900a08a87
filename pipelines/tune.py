"""Tune the loss weights of one DGN loss with an Optuna study shared across processes.

Inputs: ``model_run`` (a train run; default the newest FINISHED one for ``dataset``).
Each trial trains one DGN per class on the train split exactly as ``attack -P method=dgn``
does with the same loss, weights, schedule (``dgn_epochs``, ``dgn_lr``, batch size; auto: the
attack's defaults for the dataset and loss), ``eps`` and ``seed``, and scores the generators
on the validation split: ``val/success_rate`` (maximise: correctly classified inputs whose
prediction changes; the attack's ``val/success_rate`` with those settings) and ``val/l2_mean``
(minimise: mean L2 of x_gen − x over the same inputs). The study's first trial is the loss's
default weights (user attribute ``robust.default``; its nested run has the param ``default``),
so they are always scored. The default
``objective=multi`` keeps both (NSGA-II); ``weighted`` maximises
``success_rate − perturbation_weight · l2_mean`` (TPE) and prunes with a median pruner, scoring
also after every ``prune_every`` epochs (each such score a fresh training of that many epochs,
the exact start of the full one). The study (``study``, in ``storage``: SQLite on one
machine, ``postgresql://…`` for several) is created once and loaded by every other process, so
several ``tune`` processes (workers) share its trials; it records the schedule its trials are
scored under and refuses another; each worker seeds its sampler from (``seed``, ``worker``),
so workers propose different trials, and a killed worker's trial is failed by a heartbeat and
retried. ``total_trials`` makes the workers together finish exactly that many trials.
Each trial is a nested run (tag ``mlflow.parentRunId``) with the searched params and
``val/success_rate``, ``val/l2_mean`` and, weighted, ``objective`` (per step while pruning).
Metrics: ``tune/n_trials``, ``tune/n_complete``, ``tune/n_pruned``, ``tune/n_failed`` (the
study's, at the end), ``best/success_rate``, ``best/l2_mean`` (the pick) beside
``default/success_rate``, ``default/l2_mean`` (the default weights; weighted also
``best/score``, ``default/score``). The pick is never worse than the default on the tuning
objective (``tuning.pick``); tag ``robust.tuned_pick`` says ``default`` when no trial beat it.
Artifacts: ``tuned/weights.json`` (loss, weights, trial, values, default values and the
schedule: what ``attack -P tuned_run=`` uses, its epochs, lr and batch size included unless
given), ``tuned/front.csv`` (the Pareto front or the pick), ``figures/history.png``,
``figures/pareto_front.png`` (multi), ``figures/importances.png`` (with at least 2 complete
trials).

With ``workers`` > 1 (or ``engine=ray``) this run starts the workers itself, on
:mod:`robust.engine`: local processes (default) or Ray tasks (``engine=ray``, a local instance
or the cluster at ``ray_address``). Each worker is a child tune run (tag ``mlflow.parentRunId``,
``robust.study_task`` ``worker.<i>``) running ``n_trials`` of the study with its own sampler
seed (``worker`` + i when ``worker`` is given); this run then reports the whole study (the
metrics and artifacts above) and tags ``robust.child.worker.<i>``. On a Ray cluster the storage
must be a database every machine reaches (``postgresql://…``), not a SQLite file.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import _cli, _fanout, _params
from robust import attacks, engine, tracking, tuning
from robust.attacks import dgn
from robust.errors import ConfigError
from robust.tracking.trials import start_trial
from robust.utils import redact, resolve_device


@dataclass(frozen=True)
class Params(_params.Common, _params.Fanout):
    model_run: str | None = None
    """Train run whose model is attacked; auto: the newest FINISHED one on dataset."""
    loss: str = "nce"
    """The tuned loss: nce (α, β), lrp (α, k) or susp (α, λ, γ)."""
    objective: str = "multi"
    """multi (success rate and perturbation, Pareto front) or weighted (one score, pruned)."""
    perturbation_weight: float = 1.0
    """weighted: the score is success_rate − perturbation_weight · l2_mean."""
    prune_every: int | None = None
    """weighted: also score (and maybe prune) after every this many DGN epochs, each score a
    fresh training of that many epochs; auto: half of dgn_epochs (one early score)."""
    n_trials: int = 8
    """Trials this process runs."""
    total_trials: int | None = None
    """The workers together finish (COMPLETE or PRUNED) this many trials; auto: no cap."""
    study: str | None = None
    """Study name; auto: tune-<dataset>-<loss>-<objective>."""
    storage: str = tuning.DEFAULT_STORAGE
    """Optuna RDB URL (postgresql://… for several machines); SQLite waits 60 s for a lock."""
    worker: int | None = None
    """This worker's index; its sampler seed is tuning.sampler_seed(seed, worker), different
    for every worker. auto: taken from the tune run's id (unique, not reproducible)."""
    workers: int = 1
    """Tune workers this run starts (engine=local: processes here; ray: Ray tasks), each a
    child tune run with its own sampler seed running n_trials; 1: this process is the worker."""
    dgn_epochs: int | None = None
    """DGN epochs per trial; auto: the attack's (the dataset's default schedule for loss).
    attack -P tuned_run= trains as many unless given."""
    dgn_lr: float | None = None
    """DGN learning rate when not tuned; auto: the dataset's default schedule."""
    tune_lr: bool = False
    """Also search the DGN learning rate (1e-4 .. 1e-2, log)."""
    eps: float | None = None
    """L∞ budget; auto: 0.3 for digits/mnist/fashion, 8/255 otherwise."""
    force: bool = True
    """Tune runs are never reused by default (the study goes on growing); false allows it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _cli.check_choice("objective", self.objective, tuning.OBJECTIVES)
        tuning.search_space(self.loss, n_features=1)  # a tunable loss
        self.check_fanout()
        for name in ("n_trials", "total_trials", "dgn_epochs", "prune_every", "workers"):
            _cli.check_min(name, getattr(self, name), 1)
        if self.worker is not None:
            tuning.sampler_seed(self.seed, self.worker)  # in range
        _cli.check_min("perturbation_weight", self.perturbation_weight, 0)
        _cli.check_min("dgn_lr", self.dgn_lr, 0, strict=True)
        _cli.check_min("eps", self.eps, 0, strict=True)
        if self.eps is not None:
            attacks.check_eps(self.eps)
        if "://" not in self.storage:
            raise ConfigError(
                f"storage must be an RDB URL such as {tuning.DEFAULT_STORAGE}, but got "
                f"storage={self.storage!r}"
            )
        if self.engine == "ray" and self.cluster is not None:
            storage_for_workers(self.storage, cluster=True)


def main(p: Params) -> str:
    """Run this process's trials of the study inside one tune run (or, with ``workers`` > 1
    or ``engine=ray``, start the workers and report their study); return its run id."""
    if p.workers > 1 or p.engine == "ray":
        return _fan_out(p)
    up, model_run, params, tune_stage = _tune_stage(p, **_resolve(p))
    with tune_stage as run:
        if run.reused:
            return run.run_id
        with run.phase("load"):
            ds, model = up.model_and_data(model_run, p.data_dir, str(resolve_device(p.device)))
            worker = tuning.worker_of(p.worker, run.run_id)
            run.log_params({"resolved.worker": worker})
            study = tuning.open_study(
                p.storage, params["study"], p.objective, seed=p.seed, worker=worker,
                warmup=params["prune_every"],
            )  # fmt: skip
        with run.phase("optimize"):
            tuning.optimize(
                run, study, model, ds, p.loss, p.objective, n_trials=p.n_trials,
                total_trials=p.total_trials, settings=params | {"worker": worker},
                tune_lr=p.tune_lr, trial_log=start_trial,
            )  # fmt: skip
        with run.phase("report"):
            tuning.report(run, study, p.loss)
        return run.run_id


def _resolve(p: Params) -> dict[str, Any]:
    """What ``auto`` stands for: ``eps``, and the DGN schedule of ``attack -P method=dgn`` on
    the dataset with the loss (:func:`robust.attacks.dgn.resolve_settings`) where not given,
    and ``prune_every`` (half of the epochs)."""
    eps = p.eps if p.eps is not None else attacks.default_eps(p.dataset)
    given = {"dgn_epochs": p.dgn_epochs, "dgn_lr": p.dgn_lr}
    settings = dgn.resolve_settings(p.dataset, p.loss, given)
    out = {k: settings[k] for k in ("dgn_epochs", "dgn_lr", "dgn_batch_size")}
    return out | {"eps": eps, "prune_every": p.prune_every or max(1, out["dgn_epochs"] // 2)}


def _tune_stage(
    p: Params, **resolved: Any
) -> tuple[tracking.Lineage, str, dict[str, Any], AbstractContextManager[tracking.StageRun]]:
    """The lineage, the model run, the tune run's params (with the ``resolved`` ones) and the
    stage (not entered yet)."""
    up = tracking.Lineage(p.dataset)
    model_run = up.model_run(p.model_run)
    study = p.study or f"tune-{p.dataset}-{p.loss}-{p.objective}"
    params = _cli.as_dict(p) | {"model_run": model_run, "study": study, **resolved}
    tune_stage = tracking.stage(
        "tune", params, dataset=p.dataset, upstream={"model": model_run}, force=p.force,
        quiet=p.quiet, data=up.data_source(model_run, p.data_dir), experiment=p.experiment,
        run_name=f"tune {p.loss}",
    )  # fmt: skip
    return up, model_run, params, tune_stage


def storage_for_workers(storage: str, *, cluster: bool) -> str:
    """``storage`` as workers elsewhere must be given it: a relative SQLite path made absolute
    (a Ray worker starts in another directory); refused for a cluster (a file of this machine).

    Raises:
        ConfigError: a SQLite storage with ``cluster``.
    """
    if cluster and storage.startswith("sqlite:"):
        raise ConfigError(
            "a Ray cluster's tune workers cannot share the Optuna storage "
            f"{redact(storage)}, a file on this machine; pass storage=postgresql://… "
            "(README 'Shared tracking server'), or leave ray_address unset for a local Ray "
            "instance"
        )
    if storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(storage.removeprefix("sqlite:///")).resolve())
    return storage


def _fan_out(p: Params) -> str:
    """The tune run that starts ``p.workers`` workers on ``p.engine`` and reports the study."""
    storage = storage_for_workers(p.storage, cluster=p.engine == "ray" and p.cluster is not None)
    _, model_run, params, tune_stage = _tune_stage(p, **_resolve(p))
    name = params["study"]
    with tune_stage as run:
        if run.reused:
            return run.run_id
        one = dataclasses.replace(
            p, model_run=model_run, study=name, storage=storage, workers=1, engine="local",
            ray_address="local", force=True,
        )  # fmt: skip
        with (
            run.phase("workers"),
            _fanout.connected(p, logs=True) as uri,
            _fanout.ending_orphans(run.run_id),
        ):
            if p.engine == "ray":
                resources = _fanout.stage_resources(p.device)
            else:
                resources = engine.Resources(num_cpus=max(1, engine.cores() // p.workers))
            with engine.open_executor(
                p.engine, (one, uri, run.run_id), workers=p.workers, resources=resources,
                address=p.cluster,
            ) as executor:  # fmt: skip
                tasks = [executor.submit(_worker, i) for i in range(p.workers)]
                for i, task in enumerate(tasks):
                    run_id, attempt = task.result()
                    run.set_tags(
                        {
                            f"robust.child.worker.{i}": run_id,
                            f"robust.attempt.worker.{i}": str(attempt),
                        }
                    )
        with run.phase("report"):
            study = tuning.open_study(
                storage, name, p.objective, seed=p.seed, warmup=params["prune_every"]
            )
            tuning.report(run, study, p.loss)
        return run.run_id


def _worker(shared: tuple[Params, str, str], i: int) -> tuple[str, int]:
    """Tune worker ``i`` in a worker process or Ray task: a child tune run of the fan-out run;
    returns its run id and attempt number."""
    p, uri, parent = shared
    os.environ["MLFLOW_TRACKING_URI"] = uri  # a Ray worker of a cluster does not inherit ours
    worker = None if p.worker is None else p.worker + i
    with tracking.child_of(parent, f"worker.{i}") as attempt:
        return main(dataclasses.replace(p, worker=worker)), attempt


if __name__ == "__main__":
    _cli.entry(main, Params)
