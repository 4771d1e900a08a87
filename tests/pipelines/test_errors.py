"""The catalogue of bad inputs and faults (issue 15), one test id per case.

Each case runs one entry point in-process through ``_cli.run`` (exactly what ``python -m
pipelines.<stage>`` runs) against a module store holding a small digits study, and asserts the
user-visible contract: the exit code, the one line on stderr (``match``), no traceback, and the
run it leaves: none when the input was refused before the stage started, else one FAILED run
tagged ``robust.error`` with that line, which no later stage accepts. One case goes through
``mlflow run`` end to end. Killed processes are in tests/tracking/test_signals.py, concurrent
stores in tests/tracking/test_store.py.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from pipelines import _cli, advtrain, attack, evaluate, metric, train, tune
from robust import tracking
from robust.errors import ConfigError
from robust.tracking import lineage, store
from tests.conftest import experiment_ids, isolated_store
from tests.data.formats import write_idx_set

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "http://127.0.0.1:1"  # nothing listens on port 1: refused at once


@dataclass
class Study:
    """The module's store: a digits train run and the directory it lives in."""

    root: Path
    uri: str
    train_run: str

    def attack_run(self, **params) -> str:
        """A fresh FINISHED fgsm attack run of the train run (its own, to damage at will)."""
        p = attack.Params(
            method="fgsm", model_run=self.train_run, force=True, quiet=True, **params
        )
        return attack.main(p)

    def artifact(self, run_id: str, path: str) -> Path:
        """Where artifact ``path`` of ``run_id`` lies on this machine's disk."""
        uri = MlflowClient().get_run(run_id).info.artifact_uri
        return Path(urllib.parse.urlparse(uri).path) / path


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Study:
    root = tmp_path_factory.mktemp("catalogue")
    with isolated_store(root) as uri:
        run = train.main(train.Params(epochs=1, quiet=True))
        yield Study(root, uri, run)


@dataclass
class Case:
    """One catalogue entry: ``arrange(study, tmp_path, monkeypatch)`` damages what it must and
    returns the argv; the outcome is ``code``, a last stderr line matching ``match`` and, for a
    stage that had started, a FAILED ``stage`` run (``stage=None``: no run at all)."""

    module: object
    arrange: Callable[..., list[str]]
    match: str
    stage: str | None = None
    code: int = 2


def _args(*argv: str) -> Callable[..., list[str]]:
    return lambda study, tmp_path, mp: list(argv)


def _store(uri: Callable[[Path], str]) -> Callable[..., list[str]]:
    def arrange(study, tmp_path, mp):
        mp.setenv("MLFLOW_TRACKING_URI", uri(tmp_path))
        return ["--epochs", "1", "--quiet", "true"]

    return arrange


def _deleted_train_set(study, tmp_path, mp):
    run = study.attack_run()
    study.artifact(run, "adversarial/train.safetensors").unlink()
    return ["--attack_run", run, "--quiet", "true"]


def _truncated_test_set(study, tmp_path, mp):
    run = study.attack_run()
    path = study.artifact(run, "adversarial/test.safetensors")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return ["--attack_runs", run, "--model_runs", study.train_run, "--adaptive", "false",
            "--quiet", "true"]  # fmt: skip


def _truncated_model(study, tmp_path, mp):
    run = train.main(train.Params(epochs=1, seed=7, quiet=True))
    path = study.artifact(run, "model/model.safetensors")
    path.write_bytes(path.read_bytes()[:100])
    return ["--model_run", run, "--method", "fgsm", "--quiet", "true"]


def _tune_run_without_weights(study, tmp_path, mp):
    """A FINISHED tune run that wrote no ``tuned/weights.json`` (no trial completed)."""
    client = MlflowClient()
    tags = {"robust.stage": "tune", "robust.dataset": "digits"}
    run = client.create_run("0", tags=tags | {"robust.upstream.model": study.train_run})
    client.set_terminated(run.info.run_id, "FINISHED")
    return ["--method", "dgn", "--tuned_run", run.info.run_id, "--quiet", "true"]


# fmt: off
CASES = {
    # Parameters that cannot give a meaningful run: refused before any run starts.
    "nan-weight": Case(
        tune, _args("--objective", "weighted", "--perturbation_weight", "nan"),
        r"perturbation_weight must be a finite number, but got perturbation_weight='nan'",
    ),
    "inf-lr": Case(train, _args("--lr", "inf"), r"lr must be a finite number, but got lr='inf'"),
    "linf-eps-above-1": Case(
        attack, _args("--eps", "2"),
        r"eps must be at most 1, the largest Linf distance between two inputs in \[0, 1\], but "
        r"got eps=2$",
    ),
    "advtrain-eps-above-1": Case(advtrain, _args("--eps", "1.5"), r"eps must be at most 1,"),
    "advtrain-negative-beta": Case(
        advtrain, _args("--mode", "online", "--method", "trades", "--beta", "-1"),
        r"^beta must be at least 0, but got beta=-1\.0$",
    ),
    "advtrain-static-trades": Case(
        advtrain, _args("--mode", "static", "--method", "trades"),
        r"^method=trades crafts its inputs against the model being trained: mode must be online, "
        r"but got mode=static$",
    ),
    "evaluate-eps-above-1": Case(evaluate, _args("--eps", "3"), r"eps must be at most 1,"),
    "negative-eps": Case(attack, _args("--eps", "-0.1"), r"eps must be a finite number of at"),
    # L2 and L1 bounds depend on the inputs' size (8x8 digits: sqrt(64) = 8, 64): in the run.
    "l2-eps-above-sqrt-d": Case(
        attack, _args("--eps", "9", "--norm", "2", "--splits", "test", "--quiet", "true"),
        r"eps must be at most 8, the largest L2 distance between two inputs of 64 values in "
        r"\[0, 1\], but got eps=9$",
        stage="attack",
    ),
    "l1-eps-above-d": Case(
        attack, _args("--eps", "65", "--norm", "1", "--method", "pgd", "--splits", "test",
                      "--quiet", "true"),
        r"eps must be at most 64, the largest L1 distance",
        stage="attack",
    ),
    # Stores that cannot be opened: one line naming the URI and what to set instead.
    "store-unknown-scheme": Case(
        train, _store(lambda t: "garbage://x"),
        r"^the tracking store garbage://x has an unknown scheme garbage: \(allowed: sqlite, "
        r"http, https, postgresql, mysql, mssql, file\); set MLFLOW_TRACKING_URI to",
    ),
    "store-missing-directory": Case(
        train, _store(lambda t: f"sqlite:///{t}/missing/dir/mlflow.db"),
        r"cannot be opened: its directory .*/missing/dir does not exist; create it or set",
    ),
    "store-parent-is-a-file": Case(
        train, _store(lambda t: (t / "afile").touch() or f"sqlite:///{t}/afile/mlflow.db"),
        r"cannot be opened: .*/afile is a file, not a directory; set MLFLOW_TRACKING_URI",
    ),
    "store-unwritable-directory": Case(
        train, _store(lambda t: "sqlite:////sys/mlflow.db"),
        r"^the tracking store sqlite:////sys/mlflow\.db cannot be opened \(",
    ),
    "store-no-server": Case(
        train, _store(lambda t: UNREACHABLE),
        r"^no MLflow tracking server answers at http://127\.0\.0\.1:1 \(.*refused\); start it",
    ),
    "store-no-database": Case(
        train, _store(lambda t: "postgresql://robust:s3cret@127.0.0.1:1/mlflow"),
        r"^the tracking store postgresql://robust:\*\*\*@127\.0\.0\.1:1/mlflow cannot be opened",
    ),
    "tune-storage-unreachable": Case(
        tune, _args("--storage", "postgresql://robust:s3cret@127.0.0.1:1/optuna", "--quiet",
                    "true", "--n_trials", "1", "--dgn_epochs", "1"),
        r"^storage must be a reachable RDB URL, but got storage='postgresql://robust:\*\*\*@",
        stage="tune",
    ),
    # Upstream artifacts that are missing or damaged: the run id and the artifact path.
    "attack-train-set-deleted": Case(
        metric, _deleted_train_set,
        r"^run [0-9a-f]{32} has no readable artifact 'adversarial/train\.safetensors'",
        stage="metric",
    ),
    "attack-test-set-truncated": Case(
        evaluate, _truncated_test_set,
        r"^artifact 'adversarial/test\.safetensors' of run [0-9a-f]{32} is missing or damaged "
        r"\(its sha256 differs from the one the run logged\); rerun that stage",
        stage="evaluate",
    ),
    "model-truncated": Case(
        attack, _truncated_model,
        r"^artifact 'model/model\.safetensors' of run [0-9a-f]{32} is missing or damaged",
        stage="attack",
    ),
    "tuned-run-without-weights": Case(
        attack, _tune_run_without_weights,
        r"^run [0-9a-f]{32} has no readable artifact 'tuned/weights\.json'",
    ),
}
# fmt: on


def _runs() -> dict[str, object]:
    return {
        r.info.run_id: r
        for r in MlflowClient().search_runs(experiment_ids(MlflowClient()), run_view_type=3)
    }


@pytest.mark.parametrize("name", list(CASES))
def test_catalogue(name, study, tmp_path, capsys, monkeypatch):
    case = CASES[name]
    before = _runs()
    capsys.readouterr()
    with monkeypatch.context() as mp:
        argv = case.arrange(study, tmp_path, mp)
        lineage.forget()  # as a new process: nothing fetched yet
        capsys.readouterr()
        code = _cli.run(case.module.main, case.module.Params, argv)
    store._READY.clear()  # as a new process: the module store is opened again
    mlflow.set_tracking_uri(study.uri)
    err = capsys.readouterr().err
    assert code == case.code, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "\n" not in last
    message = last.removeprefix("error: ")
    assert re.search(case.match, message), message
    new = {k: r for k, r in _runs().items() if k not in before and r.data.tags.get("robust.stage")}
    new = {k: r for k, r in new.items() if r.data.tags["robust.stage"] == case.stage}
    if case.stage is None:
        assert not new, "a refused input must not leave a run"
        return
    ((run_id, run),) = new.items()
    assert run.info.status == "FAILED"
    assert run.data.tags["robust.error"] == message
    lineage.forget()
    with pytest.raises(ConfigError, match=f"run {run_id} is FAILED; only FINISHED runs"):
        tracking.Lineage("digits").run(run_id)  # what every later stage asks first


# ---- reuse keyed on the data actually read ---------------------------------------------------


def test_reuse_follows_the_data_files(study, tmp_path, monkeypatch, caplog):
    """Same parameters, different files: recompute, and a data error when they are gone or
    corrupt, never "reusing" a run trained on other files."""
    monkeypatch.setenv("ROBUST_DATA_MIRROR", UNREACHABLE)  # no download attempt leaves here
    caplog.set_level(logging.INFO, "robust")
    data = tmp_path / "data"
    write_idx_set(data / "mnist", n_train=200, n_test=20)
    argv = ["--dataset", "mnist", "--epochs", "1", "--quiet", "true", "--model", "mnist_5x30"]

    def train_on(root: Path) -> tuple[int, str]:
        monkeypatch.setenv("ROBUST_DATA", str(root))
        lineage.forget()
        caplog.clear()
        code = _cli.run(train.main, train.Params, argv)
        return code, caplog.text

    code, _ = train_on(data)
    assert code == 0
    code, log = train_on(data)
    assert code == 0 and "reusing FINISHED train run" in log

    (tmp_path / "empty").mkdir()
    code, log = train_on(tmp_path / "empty")
    assert code == 2 and "reusing FINISHED" not in log

    corrupt = tmp_path / "corrupt" / "mnist"
    corrupt.mkdir(parents=True)
    for f in (data / "mnist").iterdir():
        (corrupt / f.name).write_bytes(gzip.compress(b"not an idx file"))
    code, log = train_on(tmp_path / "corrupt")
    assert code == 2 and "reusing FINISHED" not in log

    write_idx_set(data / "mnist", n_train=220, n_test=20)  # new content, same names
    code, log = train_on(data)
    assert code == 0 and "reusing FINISHED" not in log

    runs = MlflowClient().search_runs(
        experiment_ids(MlflowClient()),
        "params.dataset = 'mnist'",
        run_view_type=3,
        order_by=["attributes.start_time"],
    )
    statuses = [r.info.status for r in runs]
    assert statuses == ["FINISHED", "FAILED", "FAILED", "FINISHED"]  # the reuse made no run
    fingerprints = [r.data.params["data_fingerprint"] for r in runs if "data_fingerprint" in
                    r.data.params]  # fmt: skip
    assert len(set(fingerprints)) == 4  # first, empty, corrupt, rewritten
    assert runs[0].data.params["data_path"] == str(data / "mnist")
    assert runs[1].data.tags["robust.error"].startswith("download of http://127.0.0.1:1/mnist/")
    assert "has a bad magic number" in runs[2].data.tags["robust.error"]


def test_later_stages_key_reuse_on_the_data_they_read(study):
    first = study.attack_run(splits=("test",))
    again = attack.main(
        attack.Params(method="fgsm", model_run=study.train_run, splits=("test",), quiet=True)
    )
    assert again == first  # reused: same files
    params = MlflowClient().get_run(first).data.params
    assert params["data_fingerprint"].startswith("sha256:")
    assert params["data_path"] == "bundled"


def test_batch_larger_than_the_data_is_run_with_a_warning(study, capsys, caplog):
    caplog.set_level(logging.WARNING, "robust")
    code = _cli.run(train.main, train.Params, ["--epochs", "1", "--batch_size", "100000",
                                               "--quiet", "true"])  # fmt: skip
    assert code == 0
    assert "batch_size=100000 is larger than the 1078 training inputs" in caplog.text


# ---- one case end to end under `mlflow run` -----------------------------------------------


def test_a_damaged_upstream_artifact_fails_the_mlflow_run(study, tmp_path):
    run = study.attack_run(splits=("test",))
    path = study.artifact(run, "adversarial/test.safetensors")
    path.write_bytes(path.read_bytes()[:64])
    bindir = Path(sys.executable).parent
    env = dict(os.environ, MLFLOW_TRACKING_URI=study.uri)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.run(
        [str(bindir / "mlflow"), "run", str(ROOT), "-e", "evaluate", "--env-manager", "local",
         "-P", f"attack_runs={run}", "-P", f"model_runs={study.train_run}",
         "-P", "adaptive=false", "-P", "quiet=true"],
        cwd=study.root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    expected = f"artifact 'adversarial/test.safetensors' of run {run} is missing or damaged"
    assert f"error: {expected}" in proc.stderr
    (failed,) = MlflowClient().search_runs(
        experiment_ids(MlflowClient()),
        "tags.`robust.stage` = 'evaluate' and attributes.status = 'FAILED' and "
        f"params.attack_runs = '{run}'", run_view_type=3,
    )  # fmt: skip
    assert failed.data.tags["robust.error"].startswith(expected)
