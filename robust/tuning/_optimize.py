"""This process's share of a study's trials, and what the tune run logs at the end.

The trial budget (``total_trials``) is shared by every worker of the study and counts finished
trials only: COMPLETE and PRUNED. A FAIL trial never counts: a killed worker's trial is failed
by the heartbeat and queued again with its params (a WAITING trial), and a trial that raised
ends its worker with that error; either way the budget goes to another trial. A worker starts
a trial only while finished + running + waiting trials leave room (or a WAITING one is there to
take); otherwise it waits for the others' running trials, which either finish (the budget is
spent: it stops) or die (their retry is the next trial). A trial whose creation raced past the
budget is pruned at once, untrained, tagged ``robust.over_budget`` and counted nowhere.

The study's first trial scores the default weights (those the attack uses without
``tuned_run``); it is a trial like the others for the budget. Two workers that queue it at
once make a second one, pruned untrained, tagged ``robust.duplicate`` and counted nowhere.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import warnings
from typing import Any

from robust.attacks import dgn
from robust.tuning._objective import Scores, train_scored
from robust.tuning._space import defaults, search_space, suggest
from robust.tuning._study import (
    DEFAULT_ATTR,
    DUPLICATE_ATTR,
    check_schedule,
    default_trial,
    enqueue_default,
    front,
    heartbeat,
    is_duplicate_default,
    pick,
    schedule_of,
)
from robust.tuning._trial_log import NoTrialLog, TrialLogFactory

log = logging.getLogger("robust")
_OVER_BUDGET = "robust.over_budget"
_WORKER = "robust.worker"
POLL_S = 2.0
"""How often a worker waiting for others' running trials looks again (at most; the heartbeat
interval when that is shorter)."""


def _uncounted(trial: Any) -> bool:
    """A trial that holds no budget and is counted nowhere: over budget or a duplicate
    default trial (both pruned untrained)."""
    return bool(trial.user_attrs.get(_OVER_BUDGET) or trial.user_attrs.get(DUPLICATE_ATTR))


def _claims(trials: list[Any], below: int | None = None) -> dict[str, int]:
    """How many trials (numbered below ``below``) hold a share of the budget, by state:
    finished (COMPLETE, PRUNED), RUNNING and WAITING; over-budget, duplicate default and FAIL
    trials hold none."""
    import optuna

    state = optuna.trial.TrialState
    out = {"finished": 0, "running": 0, "waiting": 0}
    for t in trials:
        if _uncounted(t) or (below is not None and t.number >= below):
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


def base_settings(loss: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The flat DGN settings every trial of a study shares (its weights, and ``k``/``dgn_lr``
    when searched, come per trial): ``loss``, ``eps``, ``dgn_epochs``, ``dgn_lr``,
    ``dgn_batch_size`` and any other DGN training setting (:data:`robust.attacks.dgn.TRAINING`)
    present in ``settings``, as ``attack -P method=dgn`` takes them."""
    out = {
        k: v
        for k, v in settings.items()
        if k in dgn.TRAINING and k not in dgn.WEIGHTS and v is not None
    }
    return out | {"loss": loss, "eps": settings["eps"]}


def schedule(loss: str, settings: dict[str, Any]) -> dict[str, Any]:
    """What a study's scores depend on besides the searched values: :func:`base_settings`
    and the training ``seed``. Recorded on the study and in ``tuned/weights.json``."""
    return base_settings(loss, settings) | {"seed": int(settings["seed"])}


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
    ``study``, optionally ``worker`` (recorded on each trial as user attribute
    ``robust.worker``) and any other DGN training setting (:func:`base_settings`).

    Every trial trains as ``attack -P method=dgn`` trains with the same settings and seed
    (:func:`robust.tuning.train_scored`), so its score is what that attack scores on the
    validation split. The study records that schedule (:func:`schedule`) and refuses
    another; its first trial is the default weights (:func:`robust.tuning.defaults`, user
    attribute ``robust.default``; queued unless the study has one), never pruned, so the pick
    can be compared with them. With ``total_trials`` the workers together finish exactly that
    many trials (see the module docstring); a worker with no room waits, checking every
    ``poll_s`` seconds (default: :data:`POLL_S` or the heartbeat interval if shorter) whether
    the others' trials finished or died.
    ``trial_log`` opens each trial's log as ``trial_log(run.run_id, number, study, params)``
    (e.g. ``robust.tracking.trials.start_trial``, a nested MLflow run); it receives the
    searched params (``default`` for the default trial, and ``retry_of``, the number of the
    dead trial a retry repeats), then ``val/success_rate``, ``val/l2_mean`` and, weighted,
    ``objective`` once per scored step; the default logs nothing.
    """
    import optuna

    input_shape = tuple(ds.train.x.shape[1:])
    space = search_space(loss, n_features=int(ds.train.x[0].numel()), tune_lr=tune_lr)
    base = base_settings(loss, settings)
    check_schedule(study, schedule(loss, settings))
    enqueue_default(study, defaults(loss, space, input_shape=input_shape, lr=base["dgn_lr"]))
    weighted = objective == "weighted"
    w = float(settings["perturbation_weight"])
    poll_s = min(heartbeat()[0], POLL_S) if poll_s is None else poll_s
    uncounted = False

    def score(s: Scores) -> float:
        return s.success_rate - w * s.l2_mean

    def step_metrics(s: Scores) -> dict[str, float]:
        out = {"val/success_rate": s.success_rate, "val/l2_mean": s.l2_mean}
        return out | ({"objective": score(s)} if weighted else {})

    def trial_fn(trial: optuna.Trial) -> Any:
        nonlocal uncounted
        trials = trial.study.get_trials(deepcopy=False)
        if total_trials is not None:
            n = _claims(trials, below=trial.number)
            if sum(n.values()) >= total_trials:
                uncounted = True
                trial.set_user_attr(_OVER_BUDGET, True)
                raise optuna.TrialPruned("other trials already hold the total_trials budget")
        if is_duplicate_default(trials, trial.number):
            uncounted = True
            trial.set_user_attr(DUPLICATE_ATTR, True)
            raise optuna.TrialPruned("another trial already scores the default weights")
        if settings.get("worker") is not None:
            trial.set_user_attr(_WORKER, int(settings["worker"]))
        (me,) = [t for t in trials if t.number == trial.number]
        is_default = bool(me.user_attrs.get(DEFAULT_ATTR))
        with warnings.catch_warnings():
            if is_default:  # a default outside the searched range is scored all the same
                warnings.filterwarnings("ignore", "Fixed parameter")
            values = suggest(trial, space)
        params = values | {"trial": trial.number} | ({"default": True} if is_default else {})
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
            if not is_default and trial.should_prune():  # the defaults are always scored
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        try:
            s = train_scored(
                model, ds.train, ds.val, base | values, seed=settings["seed"],
                classes=range(ds.num_classes),
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
        uncounted = False
        study.optimize(trial_fn, n_trials=1, catch=())
        done += not uncounted


def _values(trial: Any, multi: bool) -> dict[str, float]:
    """A COMPLETE trial's objective values by name (weighted: with its two scores)."""
    if multi:
        return dict(zip(["success_rate", "l2_mean"], trial.values, strict=True))
    return {"score": trial.value} | {k: trial.user_attrs[k] for k in ("success_rate", "l2_mean")}


def report(run: Any, study: Any, loss: str) -> dict[str, Any] | None:
    """Log the study's counts (over-budget and duplicate trials left out), its front (or
    picked trial), figures, the default weights' scores beside the pick's, and the picked
    weights with the schedule they were scored under (``tuned/weights.json``, what ``attack
    -P tuned_run=`` reads). Tags ``robust.tuned_pick``: ``default`` when no trial beat the
    default weights (:func:`robust.tuning.pick`), else ``trial``."""
    import optuna

    state = optuna.trial.TrialState
    trials = [t for t in study.get_trials(deepcopy=False) if not _uncounted(t)]
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
    values = _values(best, multi)
    default = default_trial(study)
    default_values = None if default is None else _values(default, multi)
    run.log_metrics(
        {f"best/{k}": v for k, v in values.items()}
        | {f"default/{k}": v for k, v in (default_values or {}).items()}
    )
    is_default = default is not None and best.number == default.number
    run.set_tags({"robust.tuned_pick": "default" if is_default else "trial"})
    if is_default:
        log.info("no trial of study %s beat the default %s weights on the tuning objective: "
                 "the pick is the default", study.study_name, loss)  # fmt: skip
    tuned = {
        "loss": loss,
        "weights": {k: v for k, v in best.params.items() if k not in ("k", "dgn_lr")},
        "k": best.params.get("k"),
        "dgn_lr": best.params.get("dgn_lr"),
        "trial": best.number,
        "study": study.study_name,
        "values": values,
        "default": is_default,
        "default_values": default_values,
        "schedule": schedule_of(study),
    }
    run.log_dict(tuned, "tuned/weights.json")
    _figures(run, study, multi, len(complete))
    run.describe(
        *_description(loss, trials, complete, best, values, default_values, multi, is_default)
    )
    return tuned


def _description(
    loss: str, trials: list, complete: list, best: Any, values: dict[str, float],
    default_values: dict[str, float] | None, multi: bool, is_default: bool,
) -> list[str]:  # fmt: skip
    """The tune run's description: the study's size, the pick beside the default weights."""

    def scores(v: dict[str, float]) -> str:
        return ", ".join(f"{k} {x:.3f}" for k, x in v.items())

    objective = "success rate and mean L2 (Pareto)" if multi else "the weighted score"
    pick = "the default weights (no trial beat them)" if is_default else f"trial {best.number}"
    lines = [
        f"**tune {loss}**: {len(trials)} trials ({len(complete)} complete) of the DGN loss "
        f"weights, on {objective} over the validation split.",
        f"Pick: {pick}: {scores(values)}"
        + (f"; the default weights: {scores(default_values)}." if default_values else "."),
        "The picked weights and the schedule they were scored under: `tuned/weights.json` "
        "(what `attack -P tuned_run=` reads).",
    ]
    return lines


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
