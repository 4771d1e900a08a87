"""This process's share of a study's trials, and what the tune run logs at the end."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from robust.tuning._objective import Scores, train_scored
from robust.tuning._space import search_space, suggest
from robust.tuning._study import front, pick
from robust.tuning._trial_log import NoTrialLog, TrialLogFactory

log = logging.getLogger("robust")
_OVER_BUDGET = "robust.over_budget"


def optimize(
    run: Any,
    study: Any,
    model: Any,
    ds: Any,
    loss: str,
    objective: str,
    *,
    n_trials: int,
    total_trials: int | None,
    settings: dict[str, Any],
    tune_lr: bool = False,
    trial_log: TrialLogFactory = NoTrialLog,
) -> None:
    """Run up to ``n_trials`` trials of ``study``, each with its own log under ``run``.

    ``run``: the tune run (anything with ``run_id``). ``settings``: ``eps``, ``dgn_epochs``,
    ``dgn_lr``, ``dgn_batch_size``, ``seed``, ``perturbation_weight``, ``prune_every``,
    ``study``. With ``total_trials`` every process stops once the study holds that many
    trials; a trial that another process's start pushed past the cap is pruned at once,
    untrained, and tagged ``robust.over_budget``. ``trial_log`` opens each trial's log as
    ``trial_log(run.run_id, number, study, params)`` (e.g.
    ``robust.tracking.trials.start_trial``, a nested MLflow run); it receives the searched
    params, then ``val/success_rate``, ``val/l2_mean`` and, weighted, ``objective`` once per
    scored step; the default logs nothing.
    """
    import optuna

    n_features = int(ds.train.x[0].numel())
    space = search_space(loss, n_features=n_features, tune_lr=tune_lr)
    weighted = objective == "weighted"
    w = float(settings["perturbation_weight"])

    def score(s: Scores) -> float:
        return s.success_rate - w * s.l2_mean

    def step_metrics(s: Scores) -> dict[str, float]:
        out = {"val/success_rate": s.success_rate, "val/l2_mean": s.l2_mean}
        return out | ({"objective": score(s)} if weighted else {})

    def trial_fn(trial: optuna.Trial) -> Any:
        if total_trials is not None and trial.number >= total_trials:
            trial.set_user_attr(_OVER_BUDGET, True)
            trial.study.stop()
            raise optuna.TrialPruned("the study already holds total_trials trials")
        values = suggest(trial, space)
        params = values | {"trial": trial.number}
        tlog = trial_log(run.run_id, trial.number, settings["study"], params)
        if tlog.run_id is not None:
            trial.set_user_attr("mlflow_run_id", tlog.run_id)
        state, last = "FAIL", None

        def report(epoch: int, s: Scores) -> None:
            tlog.metrics(step_metrics(s), epoch)
            trial.report(score(s), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        try:
            s = train_scored(
                model, ds.train, ds.val, loss,
                {k: v for k, v in values.items() if k not in ("k", "dgn_lr")},
                eps=settings["eps"], epochs=settings["dgn_epochs"],
                lr=values.get("dgn_lr", settings["dgn_lr"]),
                batch_size=settings["dgn_batch_size"], seed=settings["seed"],
                k=values.get("k"), classes=range(ds.num_classes),
                every=settings["prune_every"] if weighted else None,
                report=report if weighted else None,
            )  # fmt: skip
            trial.set_user_attr("success_rate", s.success_rate)
            trial.set_user_attr("l2_mean", s.l2_mean)
            last = step_metrics(s)
            state = "COMPLETE"
            return score(s) if weighted else (s.success_rate, s.l2_mean)
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            tlog.end(state, last, settings["dgn_epochs"])

    callbacks = []
    if total_trials is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(total_trials, states=None))
        if len(study.get_trials(deepcopy=False)) >= total_trials:
            log.info("study %s already holds %d trials", settings["study"], total_trials)
            return
    study.optimize(trial_fn, n_trials=n_trials, callbacks=callbacks, catch=())


def report(run: Any, study: Any, loss: str) -> dict[str, Any] | None:
    """Log the study's counts, its front (or best trial), figures and the picked weights."""
    import optuna

    state = optuna.trial.TrialState
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(_OVER_BUDGET)]
    complete = [t for t in trials if t.state == state.COMPLETE]
    run.log_metrics(
        {
            "tune/n_trials": len(trials),
            "tune/n_complete": len(complete),
            "tune/n_pruned": sum(t.state == state.PRUNED for t in trials),
        }
    )
    best = pick(study)
    if best is None:
        log.warning("no trial of study %s completed: no weights to log", study.study_name)
        return None
    multi = len(study.directions) > 1
    rows = front(study)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    run.log_text(buf.getvalue(), "tuned/front.csv")
    names = ["success_rate", "l2_mean"] if multi else ["score"]
    values = dict(zip(names, best.values, strict=True))
    if not multi:
        values |= {k: best.user_attrs[k] for k in ("success_rate", "l2_mean")}
    run.log_metrics({f"best/{k}": v for k, v in values.items()})
    tuned = {
        "loss": loss,
        "weights": {k: v for k, v in best.params.items() if k not in ("k", "dgn_lr")},
        "k": best.params.get("k"),
        "dgn_lr": best.params.get("dgn_lr"),
        "trial": best.number,
        "study": study.study_name,
        "values": values,
    }
    run.log_dict(tuned, "tuned/weights.json")
    _figures(run, study, multi, len(complete))
    return tuned


def _figures(run: Any, study: Any, multi: bool, n_complete: int) -> None:
    """Optuna's matplotlib figures: history, Pareto front (multi), importances (≥ 2 trials)."""
    import warnings

    import optuna.visualization.matplotlib as vis

    targets = (
        [(lambda t: t.values[0], "success_rate"), (lambda t: t.values[1], "l2_mean")]
        if multi
        else [(None, "score")]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental
        for target, name in targets:
            ax = vis.plot_optimization_history(study, target=target, target_name=name)
            suffix = f"_{name}" if multi else ""
            run.log_figure(ax.figure, f"figures/history{suffix}.png")
        if multi:
            ax = vis.plot_pareto_front(study, target_names=["success_rate", "l2_mean"])
            run.log_figure(ax.figure, "figures/pareto_front.png")
        if n_complete >= 2:
            try:
                ax = vis.plot_param_importances(
                    study, target=targets[0][0], target_name=targets[0][1]
                )
                run.log_figure(ax.figure, "figures/importances.png")
            except (RuntimeError, ValueError) as exc:  # e.g. a single distinct parameter value
                log.warning("no parameter importances: %s", exc)
