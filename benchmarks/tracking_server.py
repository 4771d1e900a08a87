"""What the shared tracking server costs a stage: HTTP to ``mlflow server`` vs the SQLite default.

Baseline: the embedded default, a SQLite file store. Candidate: a real ``mlflow server`` on a
throwaway PostgreSQL with proxied artifacts, started by tests/services.py's ``postgres()`` and
``mlflow_server()`` (the command line docker/compose.yaml runs), reached over HTTP on this
machine, so the server's CPU is shared with the client's (as on a small group host). Each case
runs in a fresh process, as every ``mlflow run`` entry point does; baseline and candidate
alternate, after one warm-up each (the stores' schemas are created then); medians of
``--repeats``.

Cases:
- ``train`` stage: ``python -m pipelines.train`` on digits, ``--epochs`` epochs, quiet, forced
  (wall time of the process: imports, stage, fit, evaluation, model upload).
- fixed cost: an empty stage (one phase, a few metrics, no work), timed inside the process
  from the ``with stage(...)`` to its end: first in the process (mlflow's import and the
  store's start-up included, what each entry point pays) and a second one in the same process
  (the per-stage cost once connected, what each child of ``main`` pays).

- with ``--study``: a tiny whole study (``python -m pipelines.main`` with the parameters of
  tests/pipelines/test_main.py's ``TINY``: train, fgsm and dgn attacks, metric, retrain c2 and
  c3, advtrain, evaluate, report), twice per store in ABBA order, each on a fresh store.

Expected: a stage's fixed cost over HTTP ≤ 1.5× SQLite's; a train stage within a few % of it.
Run: ``python benchmarks/tracking_server.py [--repeats 3] [--epochs 3] [--study | --only-study]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.services: the same PostgreSQL and server the tests start

_EMPTY = """
import json, os, sys, time
from robust.tracking import stage

def empty(i):
    t0 = time.perf_counter()
    with stage("noop", {"i": i}, force=True, quiet=True) as run, run.phase("work"):
        run.log_metrics({"noop/a": 1.0, "noop/b": 2.0, "noop/c": 3.0})
    return time.perf_counter() - t0

print(json.dumps({"first": empty(0), "next": empty(1)}))
sys.stdout.flush(); os._exit(0)
"""


def _env(uri: str) -> dict[str, str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT)}
    for key in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(key, None)
    return env


def _run(argv: list[str], uri: str, cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=_env(uri), cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed on {uri}:\n{out.stderr[-3000:]}")
    return wall, out.stdout


def _train(epochs: int) -> Callable[[str, Path], float]:
    argv = [sys.executable, "-m", "pipelines.train", "--dataset", "digits", "--epochs",
            str(epochs), "--quiet", "true", "--force", "true", "--device", "cpu"]  # fmt: skip
    return lambda uri, cwd: _run(argv, uri, cwd)[0]


_STUDY = [
    "--epochs", "2", "--attacks", "fgsm,dgn", "--dgn_losses", "nce", "--dgn_epochs", "1",
    "--pgd_steps", "2", "--metrics", "deepgini,random", "--configs", "c2,c3",
    "--retrain_seeds", "2", "--retrain_steps", "2", "--retrain_epochs", "1", "--workers", "1",
    "--quiet", "true", "--device", "cpu",
]  # fmt: skip


def _study(uri: str, cwd: Path) -> float:
    return _run([sys.executable, "-m", "pipelines.main", *_STUDY], uri, cwd)[0]


def _empty(uri: str, cwd: Path) -> dict[str, float]:
    _, out = _run([sys.executable, "-c", _EMPTY], uri, cwd)
    return json.loads(out.strip().splitlines()[-1])


def _alternate(measure: Callable, stores: dict[str, str], cwd: Path, repeats: int) -> dict:
    """Warm up each store once, then ``repeats`` rounds, alternating the order (ABBA)."""
    for uri in stores.values():
        measure(uri, cwd)
    results: dict[str, list] = {name: [] for name in stores}
    order = list(stores)
    for i in range(repeats):
        for name in order if i % 2 == 0 else order[::-1]:
            results[name].append(measure(stores[name], cwd))
    return results


def _line(what: str, http: list[float], sqlite: list[float], goal: str = "") -> str:
    h, s = statistics.median(http), statistics.median(sqlite)
    runs = f"[HTTP {', '.join(f'{x:.2f}' for x in http)}; SQLite "
    runs += f"{', '.join(f'{x:.2f}' for x in sqlite)}]"
    return f"{what}: {h:.2f} s vs {s:.2f} s SQLite, {h / s:.2f}×{goal} {runs}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per store and case")
    ap.add_argument("--epochs", type=int, default=3, help="train stage epochs")
    ap.add_argument("--study", action="store_true", help="also a tiny study, twice per store")
    ap.add_argument("--only-study", action="store_true", help="the tiny study alone")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from tests.services import mlflow_server, postgres

    tmp = Path(tempfile.mkdtemp(prefix="robust-bench-server-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)  # last: after the server stops
        pg = stack.enter_context(postgres())
        server = stack.enter_context(mlflow_server(pg.create("mlflow"), tmp / "server"))
        client = tmp / "client"  # the working directory of every case
        client.mkdir()
        stores = {"http": server.uri, "sqlite": f"sqlite:///{tmp}/mlflow.db"}

        if not args.only_study:
            empty = _alternate(_empty, stores, client, args.repeats)
            for key, what in (
                ("first", "empty stage, first in a fresh process"),
                ("next", "empty stage, next in the same process"),
            ):
                http = [r[key] for r in empty["http"]]
                sqlite = [r[key] for r in empty["sqlite"]]
                goal = " (goal ≤ 1.5×)" if key == "first" else ""
                print(_line(f"{what}, median of {args.repeats}", http, sqlite, goal), flush=True)

            train = _alternate(_train(args.epochs), stores, client, args.repeats)
            what = f"train stage (digits, {args.epochs} epochs, fresh process), median of"
            print(_line(f"{what} {args.repeats}", train["http"], train["sqlite"]), flush=True)

        if args.study or args.only_study:  # a fresh store each time, in ABBA order
            times: dict[str, list[float]] = {"http": [], "sqlite": []}
            for i in range(2):
                for name in ("http", "sqlite") if i == 0 else ("sqlite", "http"):
                    with contextlib.ExitStack() as fresh:
                        if name == "http":
                            srv = mlflow_server(pg.create(f"study{i}"), tmp / f"server-study{i}")
                            uri = fresh.enter_context(srv).uri
                        else:
                            uri = f"sqlite:///{tmp}/study{i}.db"
                        times[name].append(_study(uri, client))
            print(_line("tiny study (main), median of 2", times["http"], times["sqlite"]))


if __name__ == "__main__":
    main()
