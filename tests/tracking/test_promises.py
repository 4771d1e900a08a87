"""Promises of the README that no other test held to: the ``error`` column of
``results.runs``, the energy tags and ``ROBUST_CO2_COUNTRY``, the code version following the
source, and exit code 1 with a traceback for a bug."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines import _cli, train
from robust import results
from robust.errors import ConfigError
from robust.tracking import cache, stage
from tests.conftest import experiment_ids

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"dataset": "digits", "epochs": 3, "lr": 1e-3}


def _busy(n: int = 300_000) -> float:
    return float(sum(i * i for i in range(n)))


def _env(uri: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(ROOT), **extra)
    if "MLFLOW_RUN_ID" not in extra:
        env.pop("MLFLOW_RUN_ID", None)
    return env


# ---- "error (robust.error of a failed run)" -----------------------------------------------
def test_runs_error_column_shows_robust_error_of_failed_runs(mlflow_store):
    with stage("train", PARAMS, dataset="digits") as ok:
        pass
    with pytest.raises(RuntimeError), stage("train", dict(PARAMS, epochs=4)) as bug:
        raise RuntimeError("boom\n on two lines")
    with pytest.raises(ConfigError), stage("train", dict(PARAMS, epochs=5)) as bad:
        raise ConfigError("epochs must be at most 4, but got epochs=5")
    with pytest.raises(KeyboardInterrupt), stage("train", dict(PARAMS, epochs=6)) as killed:
        raise KeyboardInterrupt

    every = results.runs(status=None).set_index("run_id")
    assert set(every.index) == {ok.run_id, bug.run_id, bad.run_id, killed.run_id}
    assert every.loc[bug.run_id, "status"] == "FAILED"
    assert every.loc[bug.run_id, "error"] == "RuntimeError: boom on two lines"
    assert every.loc[bad.run_id, "error"] == "epochs must be at most 4, but got epochs=5"
    assert every.loc[killed.run_id, ["status", "error"]].tolist() == ["KILLED", "interrupted"]
    assert pd.isna(every.loc[ok.run_id, "error"])
    failed = results.runs(status="FAILED")
    assert list(failed.run_id) == [bug.run_id, bad.run_id]
    assert list(failed.error) == [
        "RuntimeError: boom on two lines",
        "epochs must be at most 4, but got epochs=5",
    ]
    assert list(results.runs().run_id) == [ok.run_id]  # FINISHED only by default


# ---- energy: robust.energy.method / estimate, ROBUST_CO2_COUNTRY ------------------------------
def _probe(country: str | None, monkeypatch) -> dict:
    if country is None:
        monkeypatch.delenv("ROBUST_CO2_COUNTRY", raising=False)
    else:
        monkeypatch.setenv("ROBUST_CO2_COUNTRY", country)
    with stage("probe", {"n": 1}, force=True) as run, run.phase("work"):
        _busy(600_000)
    return MlflowClient().get_run(run.run_id).data


def test_energy_tags_and_the_country_sets_the_carbon_intensity(mlflow_store, monkeypatch):
    usa, fra, default = (_probe(c, monkeypatch) for c in ("USA", "FRA", None))
    for r in (usa, fra, default):
        method, estimate = r.tags["robust.energy.method"], r.tags["robust.energy.estimate"]
        assert "cpu=" in method and "ram=" in method
        assert estimate == ("false" if "cpu=RAPL" in method else "true")
        assert r.metrics["energy/total_kwh"] >= r.metrics["energy/work_kwh"] > 0
        assert r.metrics["emissions/total_kg"] > 0
    # kg CO2 per kWh is the country's carbon intensity: France's nuclear grid is far cleaner
    # than the USA's, and the default is the USA
    intensity = {
        name: r.metrics["emissions/work_kg"] / r.metrics["energy/work_kwh"]
        for name, r in (("usa", usa), ("fra", fra), ("default", default))
    }
    assert intensity["fra"] < 0.5 * intensity["usa"]
    assert intensity["default"] == pytest.approx(intensity["usa"], rel=1e-6)
    assert 0.1 < intensity["usa"] < 1.0  # kg/kWh: a plausible grid, not a unit slip


# ---- the code version follows robust/ and pipelines/ ---------------------------------------
def _copy_sources(dst: Path) -> None:
    for pkg in ("robust", "pipelines"):
        for path in (ROOT / pkg).rglob("*.py"):
            target = dst / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _code_version_of(root: Path) -> str:
    """``code_version`` computed by a copy of cache.py living in ``root`` (what it hashes)."""
    spec = importlib.util.spec_from_file_location(
        f"cache_copy_{abs(hash(root))}", root / "robust" / "tracking" / "cache.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.code_version()


def test_editing_a_source_file_changes_the_code_version(tmp_path, mlflow_store):
    copy = tmp_path / "src"
    _copy_sources(copy)
    same = _code_version_of(copy)
    assert same == cache.code_version()  # a hash of the files, not of where they live
    (copy / "robust" / "__pycache__").mkdir(exist_ok=True)
    (copy / "robust" / "notes.txt").write_text("not code")
    assert _code_version_of(copy) == same  # only Python sources count
    utils = copy / "robust" / "utils.py"
    utils.write_text(utils.read_text() + "\n# an edit\n")
    edited = _code_version_of(copy)
    assert edited != same and edited.startswith("src-")
    (copy / "pipelines" / "train.py").write_text(
        (copy / "pipelines" / "train.py").read_text() + "\n# another edit\n"
    )
    assert _code_version_of(copy) not in (same, edited)
    (copy / "robust" / "new_module.py").write_text("")
    assert _code_version_of(copy) not in (same, edited)
    # every stage run is tagged with the code version, which is part of its reuse key
    with stage("probe", {"n": 1}) as run:
        pass
    tags = MlflowClient().get_run(run.run_id).data.tags
    assert tags["robust.code_version"] == cache.code_version()


# ---- a bug (not bad input): exit 1 with its traceback, the run FAILED ------------------------
BUG = textwrap.dedent(
    """
    from pipelines import _cli, train
    from robust.tracking import stage

    def main(p):
        with stage("train", {"epochs": p.epochs}, dataset=p.dataset, force=True) as run:
            raise RuntimeError("a bug in robust")

    _cli.entry(main, train.Params)
    """
)


def _buggy_main(p: train.Params) -> str:
    with stage("train", {"epochs": p.epochs}, dataset=p.dataset, force=True) as run:
        _buggy_main.run_id = run.run_id
        raise RuntimeError("a bug in robust")


def test_a_bug_propagates_from_run_and_fails_the_stage(mlflow_store, capsys):
    with pytest.raises(RuntimeError, match="a bug in robust"):
        _cli.run(_buggy_main, train.Params, ["--epochs", "2"])
    assert "error:" not in capsys.readouterr().err  # not dressed up as bad input
    r = MlflowClient().get_run(_buggy_main.run_id)
    assert r.info.status == "FAILED"
    assert r.data.tags["robust.error"] == "RuntimeError: a bug in robust"


@pytest.mark.parametrize("adopted", [False, True], ids=["python -m", "mlflow run"])
def test_a_bug_exits_1_with_its_traceback(mlflow_store, tmp_path, adopted):
    client = MlflowClient()
    extra = {}
    if adopted:  # `mlflow run` creates the run and passes its id
        extra["MLFLOW_RUN_ID"] = client.create_run("0").info.run_id
    proc = subprocess.run(
        [sys.executable, "-c", BUG, "--epochs", "2"],
        cwd=tmp_path,
        env=_env(mlflow_store, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "RuntimeError: a bug in robust"
    assert "error: " not in proc.stderr
    (run,) = client.search_runs(experiment_ids(client))
    assert run.info.status == "FAILED"
    assert run.data.tags["robust.error"] == "RuntimeError: a bug in robust"
    assert run.data.tags["robust.stage"] == "train"
    if adopted:
        assert run.info.run_id == extra["MLFLOW_RUN_ID"]
