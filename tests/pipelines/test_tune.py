"""The tune stage end to end on digits (pipelines/tune.py): nested trial runs, the shared
pruning, and attack -P tuned_run."""

from __future__ import annotations

import json
import os

import optuna
import pytest
from mlflow import MlflowClient

from pipelines import _cli, attack, train, tune
from robust import tracking, tuning
from robust.errors import ConfigError
from tests.services import free_port


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one 1-epoch train run; yields (root, model_run)."""
    import mlflow

    root = tmp_path_factory.mktemp("store")
    old_cwd, old_uri = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(root)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    try:
        yield root, train.main(train.Params(epochs=1, quiet=True))
    finally:
        os.chdir(old_cwd)
        if old_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri


def _children(run_id: str):
    c = MlflowClient()
    exp = c.get_run(run_id).info.experiment_id
    return c.search_runs([exp], f"tags.`mlflow.parentRunId` = '{run_id}'")


@pytest.fixture(scope="module")
def multi_run(store):
    p = tune.Params(n_trials=3, dgn_epochs=1, storage=f"sqlite:///{store[0]}/o.db", quiet=True)
    return tune.main(p)


def test_each_trial_is_a_nested_run_with_params_and_objectives(multi_run):
    kids = _children(multi_run)
    assert len(kids) == 3 and {k.info.status for k in kids} == {"FINISHED"}
    assert sorted(k.data.params["trial"] for k in kids) == ["0", "1", "2"]
    assert MlflowClient().get_run(multi_run).info.run_name == "tune nce"
    assert sorted(k.info.run_name for k in kids) == [f"tune nce trial {n}" for n in range(3)]
    space = tuning.search_space("nce", n_features=64)
    for k in kids:
        assert {"val/success_rate", "val/l2_mean"} <= set(k.data.metrics)
        assert all(space[n].contains(float(k.data.params[n])) for n in space)
        note = k.data.tags["mlflow.note.content"]
        assert (
            note.startswith("Trial complete after 1 DGN epochs: ") and "val/success_rate" in note
        )


def test_the_tune_run_describes_the_pick_beside_the_default(multi_run):
    note = MlflowClient().get_run(multi_run).data.tags["mlflow.note.content"]
    assert note.startswith("**tune nce**: 3 trials (3 complete)")
    assert "the default weights: " in note and "tuned/weights.json" in note


def test_tune_run_logs_counts_front_figures_and_weights(multi_run):
    c = MlflowClient()
    m = c.get_run(multi_run).data.metrics
    assert (m["tune/n_trials"], m["tune/n_complete"]) == (3, 3)
    assert {"best/success_rate", "best/l2_mean"} <= set(m)
    figs = {a.path for a in c.list_artifacts(multi_run, "figures")}
    assert {"figures/pareto_front.png", "figures/history_success_rate.png"} <= figs
    assert {a.path for a in c.list_artifacts(multi_run, "tuned")} == {
        "tuned/weights.json",
        "tuned/front.csv",
    }
    tuned = json.loads(tracking.Lineage().artifact(multi_run, "tuned/weights.json").read_text())
    assert tuned["loss"] == "nce" and set(tuned["weights"]) == {"alpha", "beta"}


def test_attack_uses_the_tuned_weights_unless_given(multi_run):
    tuned = json.loads(tracking.Lineage().artifact(multi_run, "tuned/weights.json").read_text())
    common = {"method": "dgn", "tuned_run": multi_run, "dgn_epochs": 1, "splits": ("test",)}
    run_id = attack.main(attack.Params(**common, beta=2.0, quiet=True))
    r = MlflowClient().get_run(run_id)
    assert float(r.data.params["alpha"]) == pytest.approx(tuned["weights"]["alpha"])
    assert float(r.data.params["beta"]) == 2.0  # given explicitly: overrides the tuned one
    assert r.data.tags["robust.upstream.tuned"] == r.data.params["tuned_run"] == multi_run
    with pytest.raises(ConfigError, match="tuned the nce loss, but loss=lrp"):
        attack.main(attack.Params(**common, loss="lrp", quiet=True))


def test_weighted_objective_reports_per_chunk_and_can_prune(store):
    url = f"sqlite:///{store[0]}/w.db"
    p = tune.Params(
        objective="weighted", n_trials=3, dgn_epochs=2, prune_every=1, storage=url, quiet=True
    )
    run_id = tune.main(p)
    study = optuna.load_study(study_name="tune-digits-nce-weighted", storage=url)
    for t in study.trials:
        assert set(t.intermediate_values) == {1}  # scored after epoch 1 of 2
    kids = _children(run_id)
    hist = MlflowClient().get_metric_history(kids[0].info.run_id, "objective")
    assert min(h.step for h in hist) == 1  # intermediate values reach the nested run too
    states = {t.state for t in study.trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert {k.info.status for k in kids} <= {"FINISHED", "KILLED"}


def test_bad_params_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="objective must be one of multi, weighted"):
        tune.Params(objective="single")
    with pytest.raises(ConfigError, match="n_trials must be at least 1"):
        tune.Params(n_trials=0)
    with pytest.raises(ConfigError, match="storage must be an RDB URL"):
        tune.Params(storage="optuna.db")
    with pytest.raises(ConfigError, match="loss must be one of nce, lrp, susp to be tuned"):
        tune.Params(loss="custom")
    with pytest.raises(ConfigError, match="worker must be between 0 and 4294967295, but got"):
        tune.Params(worker=-1)
    assert tune.Params(worker=2**32 - 1).worker == 2**32 - 1


def test_an_unreachable_storage_is_one_line_naming_it(store, capsys):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/optuna"
    argv = ["--storage", url, "--n_trials", "1", "--dgn_epochs", "1", "--quiet", "true"]
    assert _cli.run(tune.main, tune.Params, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: storage must be a reachable RDB URL, but got storage='{url}' (")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_the_tune_run_logs_its_worker(multi_run):
    params = MlflowClient().get_run(multi_run).data.params
    assert (
        params["worker"] == "auto" and int(params["resolved.worker"]) == int(multi_run, 16) % 2**32
    )


def _workers(run_id: str, n: int) -> list:
    c = MlflowClient()
    tags = c.get_run(run_id).data.tags
    return [c.get_run(tags[f"robust.child.worker.{i}"]) for i in range(n)]


@pytest.fixture(scope="module")
def fanned(store):
    """Two local worker processes, three trials between them; the storage given relative to
    the working directory (the workers get it made absolute)."""
    p = tune.Params(
        n_trials=2, total_trials=3, workers=2, dgn_epochs=1, study="fan",
        storage="sqlite:///fan.db", quiet=True,
    )  # fmt: skip
    return tune.main(p)


def test_workers_are_child_tune_runs_sharing_one_study(fanned, store):
    kids = _workers(fanned, 2)
    for i, kid in enumerate(kids):
        assert kid.info.status == "FINISHED"
        assert kid.data.tags["mlflow.parentRunId"] == fanned
        assert kid.data.tags["robust.study_task"] == f"worker.{i}"
        assert kid.data.tags["robust.pid"] != str(os.getpid())  # a worker process
        assert kid.data.params["study"] == "fan"
        assert kid.data.params["storage"] == f"sqlite:///{store[0]}/fan.db"
        assert 1 <= len(_children(kid.info.run_id)) <= 2  # its trials are nested under it
    assert kids[0].data.params["resolved.worker"] != kids[1].data.params["resolved.worker"]
    study = optuna.load_study(study_name="fan", storage=f"sqlite:///{store[0]}/fan.db")
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 3  # total_trials, between the two workers


def test_the_fan_out_run_reports_the_whole_study(fanned):
    c = MlflowClient()
    run = c.get_run(fanned)
    assert run.data.params["workers"] == "2" and run.data.params["engine"] == "local"
    assert run.data.metrics["tune/n_complete"] == 3
    assert {"best/success_rate", "best/l2_mean"} <= set(run.data.metrics)
    assert {a.path for a in c.list_artifacts(fanned, "tuned")} == {
        "tuned/weights.json",
        "tuned/front.csv",
    }
    assert {"time/workers_s", "time/report_s"} <= set(run.data.metrics)


def test_tune_workers_on_ray_are_ray_tasks(store):
    import ray

    from robust import engine

    engine.disconnect()
    p = tune.Params(
        n_trials=1, workers=2, engine="ray", dgn_epochs=1, study="fan-ray", worker=5,
        storage=f"sqlite:///{store[0]}/fan-ray.db", quiet=True,
    )  # fmt: skip
    run_id = tune.main(p)
    assert not ray.is_initialized()  # the stage stopped the instance it started
    kids = _workers(run_id, 2)
    assert [k.data.params["resolved.worker"] for k in kids] == ["5", "6"]  # worker + i
    assert all(k.data.tags["robust.ray_node"] for k in kids)
    assert MlflowClient().get_run(run_id).data.metrics["tune/n_complete"] == 2


def test_a_cluster_refuses_a_sqlite_storage_with_one_line(capsys):
    argv = ["--engine", "ray", "--ray_address", "10.9.8.7:6379", "--storage", "sqlite:///o.db"]
    assert _cli.run(tune.main, tune.Params, argv) == 2
    assert capsys.readouterr().err == (
        "error: a Ray cluster's tune workers cannot share the Optuna storage sqlite:///o.db, "
        "a file on this machine; pass storage=postgresql://… (README 'Shared tracking "
        "server'), or leave ray_address unset for a local Ray instance\n"
    )


def _study(store, name="tune-digits-nce-multi", db="o.db"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{store[0]}/{db}")


def _metrics(run_id: str) -> dict[str, float]:
    return MlflowClient().get_run(run_id).data.metrics


def test_the_first_trial_is_the_default_weights_and_its_score_is_logged(multi_run, store):
    first = _study(store).trials[0]
    assert first.user_attrs[tuning.DEFAULT_ATTR] is True
    assert first.params == {"alpha": 1.0, "beta": 1.0}  # nce's defaults (the seed's)
    m = _metrics(multi_run)
    assert (m["default/success_rate"], m["default/l2_mean"]) == tuple(first.values)
    assert m["best/success_rate"] >= m["default/success_rate"]  # never worse
    tuned = tracking.Lineage().json(multi_run, "tuned/weights.json")
    assert tuned["default_values"] == {"success_rate": first.values[0], "l2_mean": first.values[1]}
    assert tuned["schedule"] == {
        "loss": "nce", "eps": 0.3, "dgn_epochs": 1, "dgn_lr": 1e-3, "dgn_batch_size": 16,
        "seed": 0,
    }  # fmt: skip


def test_the_default_score_is_what_the_attack_scores_with_the_default_weights(multi_run, store):
    """The logged default score is the attack's on the validation split with no weights given
    and the tune's schedule (epochs given here: the attack's default is 100)."""
    run_id = attack.main(
        attack.Params(method="dgn", dgn_epochs=1, splits=("val",), force=True, quiet=True)
    )
    m = _metrics(multi_run)
    assert _metrics(run_id)["val/success_rate"] == m["default/success_rate"]
    # the perturbation over the inputs the model gets right, from the attack's saved set
    up = tracking.Lineage()
    ds, model = up.model_and_data(store[1], None)
    adv = up.adversarial(run_id, "val")
    from robust.evaluation import predict

    x = ds.val.x[adv["index"]]
    correct = predict(model, x).argmax(1) == adv["y"]
    l2 = (adv["x"] - x).flatten(1).norm(dim=1)[correct].mean()
    assert float(l2) == pytest.approx(m["default/l2_mean"], rel=1e-6)


def test_the_attack_with_tuned_run_trains_as_the_picked_trial_and_scores_the_same(multi_run):
    """With no schedule given, the attack takes the tune's (1 epoch here, not its own 100) and
    gets on the validation split exactly the pick's tuning score."""
    run_id = attack.main(
        attack.Params(method="dgn", tuned_run=multi_run, splits=("val",), quiet=True)
    )
    params = MlflowClient().get_run(run_id).data.params
    assert (params["dgn_epochs"], params["dgn_lr"], params["dgn_batch_size"]) == (
        "1", "0.001", "16",
    )  # fmt: skip
    assert _metrics(run_id)["val/success_rate"] == _metrics(multi_run)["best/success_rate"]


def test_the_pick_is_the_default_when_every_sampled_trial_is_worse(store, monkeypatch):
    """Bounds that keep the generators copying their input (α ≫ β): every sampled trial flips
    fewer predictions than the defaults, so the defaults are the pick."""
    from robust.tuning import _space

    bad = {"alpha": _space.Range(1e3, 2e3, log=True), "beta": _space.Range(1e-6, 2e-6)}
    monkeypatch.setitem(_space._WEIGHTS, "nce", bad)
    p = tune.Params(
        objective="weighted", perturbation_weight=0.0, n_trials=3, dgn_epochs=2, study="bad",
        storage=f"sqlite:///{store[0]}/bad.db", quiet=True,
    )  # fmt: skip
    run_id = tune.main(p)
    study = _study(store, "bad", "bad.db")
    default, *sampled = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert default.user_attrs[tuning.DEFAULT_ATTR] and sampled
    assert all(t.value < default.value for t in sampled)  # the bounds are as bad as meant
    m = _metrics(run_id)
    assert m["best/score"] == m["default/score"] == default.value
    assert MlflowClient().get_run(run_id).data.tags["robust.tuned_pick"] == "default"
    tuned = tracking.Lineage().json(run_id, "tuned/weights.json")
    assert tuned["default"] is True and tuned["trial"] == default.number
    assert tuned["weights"] == {"alpha": 1.0, "beta": 1.0}
