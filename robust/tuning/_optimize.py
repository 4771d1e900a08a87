"""This process's share of a study's trials, and what the tune run logs at the end.

The trial budget (``total_trials``) is shared by every worker of the study and counts finished
trials only: COMPLETE and PRUNED. A FAIL trial never counts: a killed worker's trial is failed
by the heartbeat and queued again with its params (a WAITING trial), and a trial that raised
ends its worker with that error; either way the budget goes to another trial. A worker starts
a trial only while finished + running + waiting trials leave room (or a WAITING one is there to
take); otherwise it waits for the others' running trials, which either finish (the budget is
spent: it stops) or die (their retry is the next trial). A trial whose creation raced past the
budget is pruned at once, untrained, tagged ``robust.over_budget`` and counted nowhere.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import warnings
from typing import Any

from robust.tuning._objective import Scores, train_scored
from robust.tuning._space import search_space, suggest
from robust.tuning._study import front, heartbeat, pick
from robust.tuning._trial_log import NoTrialLog, TrialLogFactory

log = logging.getLogger("robust")
_OVER_BUDGET = "robust.over_budget"
_WORKER = "robust.worker"
POLL_S = 2.0
"""How often a worker waiting for others' running trials looks again (at most; the heartbeat
interval when that is shorter)."""


def _claims(trials: list[Any], below: int | None = None) -> dict[str, int]:
    """How many trials (numbered below ``below``) hold a share of the budget, by state:
    finished (COMPLETE, PRUNED), RUNNING and WAITING; over-budget and FAIL trials hold none."""
    import optuna

    state = optuna.trial.TrialState
    out = {"finished": 0, "running": 0, "waiting": 0}
    for t in trials:
        if t.user_attrs.get(_OVER_BUDGET) or (below is not None and t.number >= below):
            continue
        if t.state in (state.COMPLETE, state.PRUNED):
            out["finished"] += 1
        elif t.state == state.RUNNING:
            out["running"] += 1
        elif t.state == state.WAITING:
            out["waiting"] += 1
    return out


def _fail_stale(study: Any) -> None:
    """Fail the running trials whose worker stopped beating (and queue their retries)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _room(study: Any, total_trials: int, poll_s: float) -> bool:
    """Wait until this worker may start a trial (True) or the budget is spent (False)."""
    said = False
    while True:
        n = _claims(study.get_trials(deepcopy=False))
        if n["finished"] >= total_trials:
            return False
        if n["waiting"] or sum(n.values()) < total_trials:
            return True
        if not said:
            log.info("study holds %d finished trials of %d: waiting for %d running ones",
                     n["finished"], total_trials, n["running"])  # fmt: skip
            said = True
        time.sleep(poll_s)
        _fail_stale(study)


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
    poll_s: float | None = None,
) -> None:
    """Run up to ``n_trials`` trials of ``study``, each with its own log under ``run``.

    ``run``: the tune run (anything with ``run_id``). ``settings``: ``eps``, ``dgn_epochs``,
    ``dgn_lr``, ``dgn_batch_size``, ``seed``, ``perturbation_weight``, ``prune_every``,
    ``study`` and optionally ``worker`` (recorded on each trial as user attribute
    ``robust.worker``). With ``total_trials`` the workers together finish exactly that many
    trials (see the module docstring); a worker with no room waits, checking every ``poll_s``
    seconds (default: :data:`POLL_S` or the heartbeat interval if shorter) whether the
    others' trials finished or died.
    ``trial_log`` opens each trial's log as ``trial_log(run.run_id, number, study, params)``
    (e.g. ``robust.tracking.trials.start_trial``, a nested MLflow run); it receives the
    searched params (and ``retry_of``, the number of the dead trial a retry repeats), then
    ``val/success_rate``, ``val/l2_mean`` and, weighted, ``objective`` once per scored step;
    the default logs nothing.
    """
    import optuna

    n_features = int(ds.train.x[0].numel())
    space = search_space(loss, n_features=n_features, tune_lr=tune_lr)
    weighted = objective == "weighted"
    w = float(settings["perturbation_weight"])
    poll_s = min(heartbeat()[0], POLL_S) if poll_s is None else poll_s
    over_budget = False

    def score(s: Scores) -> float:
        return s.success_rate - w * s.l2_mean

    def step_metrics(s: Scores) -> dict[str, float]:
        out = {"val/success_rate": s.success_rate, "val/l2_mean": s.l2_mean}
        return out | ({"objective": score(s)} if weighted else {})

    def trial_fn(trial: optuna.Trial) -> Any:
        nonlocal over_budget
        trials = trial.study.get_trials(deepcopy=False)
        if total_trials is not None:
            n = _claims(trials, below=trial.number)
            if sum(n.values()) >= total_trials:
                over_budget = True
                trial.set_user_attr(_OVER_BUDGET, True)
                raise optuna.TrialPruned("other trials already hold the total_trials budget")
        if settings.get("worker") is not None:
            trial.set_user_attr(_WORKER, int(settings["worker"]))
        values = suggest(trial, space)
        params = values | {"trial": trial.number}
        (me,) = [t for t in trials if t.number == trial.number]
        history = me.system_attrs.get("retry_history")  # set by the heartbeat's retry callback
        if history:  # a retry of a dead worker's trial, with its params
            params["retry_of"] = history[-1]
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

    done = 0
    while done < n_trials:
        if total_trials is not None and not _room(study, total_trials, poll_s):
            log.info("study %s holds %d finished trials", settings["study"], total_trials)
            return
        over_budget = False
        study.optimize(trial_fn, n_trials=1, catch=())
        done += not over_budget


def report(run: Any, study: Any, loss: str) -> dict[str, Any] | None:
    """Log the study's counts (over-budget trials left out), its front (or best trial),
    figures and the picked weights."""
    import optuna

    state = optuna.trial.TrialState
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(_OVER_BUDGET)]
    complete = [t for t in trials if t.state == state.COMPLETE]
    run.log_metrics(
        {
            "tune/n_trials": len(trials),
            "tune/n_complete": len(complete),
            "tune/n_pruned": sum(t.state == state.PRUNED for t in trials),
            "tune/n_failed": sum(t.state == state.FAIL for t in trials),
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
