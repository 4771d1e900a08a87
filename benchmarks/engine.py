"""What ``engine=ray`` costs and gains against ``engine=local`` on this machine.

Cases, each in a fresh process (as a stage runs):

* overhead: Ray's start-up (``robust.engine.connect`` to a new local instance of 2 CPUs, and
  its shutdown) and the per-task overhead of an empty task (``--tasks`` of them through
  :class:`~robust.engine.RayExecutor` and through :class:`~robust.engine.LocalExecutor` with two
  processes; total time over tasks, after a warm-up task per worker);
* grid: the digits retraining grid of the retrain stage's defaults: a 3-epoch seeded digits
  model, a pool of digits' 1078 training inputs and their FGSM copies (ε 0.3), c2, ``--steps``
  budget steps × ``--seeds`` seeds for one metric (random orders), each fit digits' default
  training (Adam, 30 epochs, batch 32), scored on the test set and its FGSM copy. Candidates:
  one process (the reference), two local worker processes, two local worker processes of the
  code before ``robust.engine`` (``--baseline-ref``, default the parent of the commit that
  added robust/engine; it passed the shared state through a pickle file), and Ray tasks on a local
  instance of 2 CPUs. Time from before the workers start to the last point (start-up
  included, what a stage pays);
* with ``--study``: the digits study (``python -m pipelines.main``, its defaults, or with
  ``--tiny`` the tiny study of tests/pipelines/test_main.py), ``engine=local`` vs
  ``engine=ray``, each on a fresh SQLite store, in ABBA order over ``--study-repeats`` rounds
  (default 1: the digits study takes minutes).

* with ``--protocol``: the paper calculation of seed 000's full protocol (6 metrics × 3
  configurations × 20 budget steps × ``--seeds`` seeds on each of its datasets): the per-fit
  cost is measured here as the seconds per input and epoch of each dataset's default model
  (one torch thread, as a task has; one epoch over 1024 seeded random inputs of the dataset's
  shape after a warm-up batch; the cost does not depend on the values), times the inputs and
  epochs of every fit (a budget step k of 20 trains on k/20 of the pool, so 0.525 × pool per
  fit on average; c3's pool is the adversarial inputs only; pool sizes and epochs from
  ../shared/seeds' notes and robust.training.defaults_for). Evaluation after each fit and the
  metric scores are left out (a few % of a fit). Printed: core-hours per dataset and the wall
  time on N machines of 2 cores (this machine's) and of 32, fits spread evenly.

Every grid case alternates (ABBA) over ``--repeats`` rounds; medians are printed with every
run's time, and ratios are candidate time over the local engine's (0.8× = 20 % faster).
Expected: local now vs before within noise (≈ 1.0×); Ray ≥ local on 2 cores (its tasks pay
start-up and object-store overhead and the same 2 cores do the work), the difference being
the price of being able to use more machines.

Run: ``python benchmarks/engine.py [--repeats 2] [--steps 5] [--seeds 2] [--study [--tiny]]
[--protocol]``.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_OVERHEAD = """
import json, operator, os, sys, time
from robust import engine

noop = operator.getitem  # an importable function (spawned workers import it): shared[i] == i

out = {}
for kind in ("local", "ray"):
    t0 = time.perf_counter()
    if kind == "ray":
        engine.connect(num_cpus=2)
    ex = engine.open_executor(kind, list(range(TASKS)), workers=2)
    [t.result() for t in [ex.submit(noop, i) for i in range(4)]]  # every worker started
    ready = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert [t.result() for t in [ex.submit(noop, i) for i in range(TASKS)]] == list(range(TASKS))
    per_task = (time.perf_counter() - t0) / TASKS
    t0 = time.perf_counter()
    ex.close()
    engine.disconnect()
    out[kind] = {"ready_s": ready, "per_task_ms": 1000 * per_task,
                 "stop_s": time.perf_counter() - t0}
print(json.dumps(out))
sys.stdout.flush(); os._exit(0)
"""

_GRID = """
import inspect, json, os, sys, time
import numpy as np, torch
from robust import attacks, data, models, retraining, training

ENGINE, WORKERS, STEPS, SEEDS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
ds = data.load("digits", seed=0)
model = models.build("digits_cnn", ds.input_shape, ds.num_classes)
train = training.defaults_for("digits")
training.fit(model, ds.train, ds.val, epochs=3, lr=train.lr, batch_size=train.batch_size,
             seed=0, device="cpu", progress=False)
model.eval()
adv = attacks.fgsm(model, ds.train.x, ds.train.y, 0.3)
pool = retraining.Pool(torch.cat([ds.train.x, adv]), torch.cat([ds.train.y, ds.train.y]),
                       torch.cat([torch.zeros(len(adv)), torch.ones(len(adv))]).long())
tests = retraining.EvalSets(ds.test, data.Split(attacks.fgsm(model, ds.test.x, ds.test.y, 0.3),
                                                ds.test.y))
orders = {s: np.random.default_rng(s).permutation(len(pool.y)) for s in range(SEEDS)}
kw = {} if ENGINE == "before" else {"engine": ENGINE}
t0 = time.perf_counter()
if WORKERS == 1 and ENGINE != "ray":
    result = retraining.retrain_seeds(model, pool, orders, "c2", STEPS, train=train, val=ds.val,
                                      tests=tests, device="cpu")
else:
    with retraining.Workers(WORKERS, model, pool, tests, ds.val, train, "cpu", **kw) as w:
        result = retraining.retrain_seeds(model, pool, orders, "c2", STEPS, workers=w,
                                          train=train, val=ds.val, tests=tests, device="cpu")
wall = time.perf_counter() - t0
fits = [p.fit_s for p in result.points if p.step]
print(json.dumps({"wall_s": wall, "fits": len(fits), "fit_s": float(np.median(fits)),
                  "best": result.best.scores}))
sys.stdout.flush(); os._exit(0)
"""


_PROTOCOL = """
import json, os, sys, time
import torch
from robust import models, training
from robust.data import Split

torch.set_num_threads(1)
out = {}
for dataset in sys.argv[1].split(","):
    model = models.build(models.default_model(dataset), seed=0)
    cfg = training.defaults_for(dataset)
    shape, classes = model.spec["input_shape"], model.spec["num_classes"]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1024, *shape, generator=g)
    y = torch.randint(0, classes, (1024,), generator=g)
    kw = dict(lr=cfg.lr, batch_size=cfg.batch_size, optimizer=cfg.optimizer, seed=0,
              device="cpu", progress=False)
    training.fit(model, Split(x[: cfg.batch_size], y[: cfg.batch_size]), epochs=1, **kw)
    t0 = time.perf_counter()
    training.fit(model, Split(x, y), epochs=1, **kw)
    out[dataset] = {"s_per_input_epoch": (time.perf_counter() - t0) / len(x),
                    "epochs": cfg.epochs, "shape": list(shape)}
print(json.dumps(out))
sys.stdout.flush(); os._exit(0)
"""

SEED_000_POOLS = {  # dataset: (pool = train + adversarial train, adversarial train only)
    "gtsrb": (35287, 3921),
    "intel": (14224, 3000),
    "cifar10": (47999, 6000),
    "mnist": (55998, 6999),
    "fashion": (55998, 6999),
}
"""Seed 000's pools (../shared/seeds/guided-retraining-code-notes.md §2)."""


def _protocol(seeds: int) -> None:
    doc = json.loads(_run([sys.executable, "-c", _PROTOCOL, ",".join(SEED_000_POOLS)]))
    fits_per_config = 6 * 20 * seeds
    print(
        f"seed 000's protocol: 6 metrics × 3 configurations × 20 steps × {seeds} seeds = "
        f"{3 * fits_per_config} fits per dataset (one thread each):"
    )
    total_h, longest_s = 0.0, 0.0
    for dataset, (pool, adversarial) in SEED_000_POOLS.items():
        d = doc[dataset]
        per_input = d["s_per_input_epoch"] * d["epochs"]
        c12 = 2 * fits_per_config * 0.525 * pool * per_input
        c3 = fits_per_config * 0.525 * adversarial * per_input
        hours = (c12 + c3) / 3600
        total_h += hours
        fit_s = 0.525 * pool * per_input
        longest_s = max(longest_s, pool * per_input)
        print(
            f"  {dataset} {tuple(d['shape'])}: {1e3 * d['s_per_input_epoch']:.2f} ms per input "
            f"and epoch × {d['epochs']} epochs; an average c1/c2 fit {fit_s / 60:.1f} min; "
            f"{hours:.0f} core-hours"
        )
    print(
        f"  all {len(SEED_000_POOLS)} datasets: {total_h:.0f} core-hours; wall time (never "
        f"below the longest fit, {longest_s / 60:.0f} min on the whole pool):"
    )
    for cores in (2, 32):
        times = ", ".join(
            f"{n} × {cores} cores {max(total_h / (n * cores), longest_s / 3600):.1f} h"
            for n in (1, 4, 16, 64)
        )
        print(f"    {times}")


def _run(argv: list[str], *, path: Path = ROOT, env: dict | None = None, cwd: Path = ROOT) -> str:
    full = {**os.environ, "PYTHONPATH": str(path), **(env or {})}
    full.pop("MLFLOW_RUN_ID", None)
    out = subprocess.run(argv, env=full, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{out.stderr[-3000:]}")
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _baseline_tree(ref: str | None, into: Path) -> tuple[str, Path]:
    """The source tree at ``ref`` (default: the commit before robust/engine was added)."""
    if ref is None:
        added = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%H", "--", "robust/engine/__init__.py"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if not added:
            raise SystemExit("robust/engine is not committed yet: pass --baseline-ref")
        ref = f"{added[-1]}^"
    archive = subprocess.run(
        ["git", "archive", ref, "robust"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return ref, into


def _line(what: str, times: list[float], ref: list[float] | None = None, name: str = "") -> str:
    m = statistics.median(times)
    runs = ", ".join(f"{t:.1f}" for t in times)
    ratio = f", {m / statistics.median(ref):.2f}× {name}" if ref else ""
    return f"{what}: {m:.1f} s{ratio} [{runs}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="rounds per case (ABBA)")
    ap.add_argument("--tasks", type=int, default=200, help="empty tasks for the overhead")
    ap.add_argument("--steps", type=int, default=5, help="grid: budget steps")
    ap.add_argument("--seeds", type=int, default=2, help="grid: seeds")
    ap.add_argument("--baseline-ref", default=None, help="git ref of the 'before' code")
    ap.add_argument("--study", action="store_true", help="also the digits study, local vs ray")
    ap.add_argument("--tiny", action="store_true", help="the tiny study instead of digits'")
    ap.add_argument("--study-repeats", type=int, default=1, help="rounds of the study (ABBA)")
    ap.add_argument("--skip-grid", action="store_true", help="overhead (and study) only")
    ap.add_argument("--protocol", action="store_true", help="seed 000's protocol, on paper")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="robust-bench-engine-"))
    try:
        over = json.loads(
            _run([sys.executable, "-c", _OVERHEAD.replace("TASKS", str(args.tasks))])
        )
        for kind, o in over.items():
            print(
                f"{kind}: workers ready in {o['ready_s']:.2f} s, {o['per_task_ms']:.2f} ms per "
                f"empty task ({args.tasks} tasks, 2 workers), stopped in {o['stop_s']:.2f} s",
                flush=True,
            )
        if not args.skip_grid:
            ref, before = _baseline_tree(args.baseline_ref, tmp / "before")
            cases = {
                "one process": ("local", 1, ROOT),
                "local, 2 processes": ("local", 2, ROOT),
                f"before ({ref}), 2 processes": ("before", 2, before),
                "ray, 2 CPUs": ("ray", 2, ROOT),
            }
            times: dict[str, list[float]] = {name: [] for name in cases}
            fit_s: list[float] = []
            order = list(cases)
            for i in range(args.repeats):
                for name in order if i % 2 == 0 else order[::-1]:
                    engine, workers, path = cases[name]
                    argv = [sys.executable, "-c", _GRID, engine, str(workers)]
                    doc = json.loads(_run([*argv, str(args.steps), str(args.seeds)], path=path))
                    times[name].append(doc["wall_s"])
                    if workers == 1:
                        fit_s.append(doc["fit_s"])
            print(
                f"grid: c2, {args.steps} steps × {args.seeds} seeds = {doc['fits']} fits of "
                f"digits (30 epochs), median fit {statistics.median(fit_s):.2f} s in one "
                f"process; medians of {args.repeats}:"
            )
            local = times["local, 2 processes"]
            for name, t in times.items():
                print("  " + _line(name, t, local, "local"), flush=True)
        if args.study:
            tiny = [
                "--epochs", "2", "--attacks", "fgsm,dgn", "--dgn_losses", "nce",
                "--dgn_epochs", "1", "--pgd_steps", "2", "--metrics", "deepgini,random",
                "--configs", "c2,c3", "--retrain_seeds", "2", "--retrain_steps", "2",
                "--retrain_epochs", "1", "--workers", "1",
            ] if args.tiny else []  # fmt: skip
            study: dict[str, list[float]] = {"local": [], "ray": []}
            for i in range(args.study_repeats):
                for engine in ("local", "ray") if i % 2 == 0 else ("ray", "local"):
                    where = tmp / f"study-{engine}-{i}"
                    where.mkdir()
                    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{where}/mlflow.db"}
                    argv = [sys.executable, "-m", "pipelines.main", *tiny, "--engine", engine]
                    t0 = time.perf_counter()
                    _run([*argv, "--quiet", "true"], env=env, cwd=where)
                    study[engine].append(time.perf_counter() - t0)
            what = "tiny study" if args.tiny else "digits study (main's defaults)"
            print(_line(f"{what}, engine=local", study["local"]))
            print(_line(f"{what}, engine=ray", study["ray"], study["local"], "local"))
        if args.protocol:
            _protocol(3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
