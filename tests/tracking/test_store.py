"""The store in force (robust/tracking/store.py): SQLite for one user on one machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
STAGE = """
from robust.tracking import stage
with stage("train", {"worker": WORKER}, dataset="digits", force=True) as run:
    run.log_metrics({"x": 1.0})
print(run.run_id)
"""


def test_stages_started_at_once_on_a_new_sqlite_store_all_succeed(tmp_path):
    """Without the schema lock, all but one process died in MLflow's migration ("Online
    migration expected to match one row"); on an existing store SQLite's busy timeout
    serialises the writers."""
    (tmp_path / "new").mkdir()
    uri = f"sqlite:///{tmp_path}/new/mlflow.db"
    env = {"MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}

    def start(i: int) -> subprocess.Popen:
        code = STAGE.replace("WORKER", str(i))
        return subprocess.Popen(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    for round_ in range(2):  # a new store, then the same store again
        procs = [start(i) for i in range(3)]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (_, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, f"round {round_}: {err[-2000:]}"
        ids = [out.split()[-1] for out, _ in outs]
        for run_id in ids:
            assert MlflowClient(tracking_uri=uri).get_run(run_id).info.status == "FINISHED"
