"""What the stage run costs: the same training with and without it.

Overhead: the digits CNN trained for as many epochs as fill ``--seconds`` (calibrated after a
warm-up), in one process. Baseline: ``fit`` alone. Candidate: the same ``fit`` inside
``stage(...)`` with a phase and per-epoch metrics, as ``pipelines/train.py`` does, in a fresh
SQLite store. Baseline and candidate alternate ``--pairs`` times (ABBA order); the median of the
per-pair ratios is reported, since identical 60 s runs differ by up to 20 % here.

Fixed cost: what a stage adds to a fresh process, as every ``mlflow run`` starts one — a cold
``python`` that imports robust and opens and closes an empty stage (imports of mlflow and
codecarbon, store connection, run creation, codecarbon start/stop, system-metrics thread) minus
a cold ``python`` that only imports robust and torch; both leave with ``os._exit`` as the
pipelines do (``pipelines/_cli.entry``). Median of ``--repeats``.

Expected: overhead ≤ 5 % on a 60 s stage and a fixed cost under 3 s.
Run: ``python benchmarks/tracking_overhead.py [--seconds 60] [--pairs 4] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time

_EXIT = "\nimport os, sys; sys.stdout.flush(); os._exit(0)"  # as pipelines/_cli.entry exits
_BARE = "import torch, robust.data, robust.models" + _EXIT
_STAGE = (
    "import torch, robust.data, robust.models; from robust.tracking import stage\n"
    "with stage('bench', {}, force=True): pass" + _EXIT
)


def _cold(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="target stage length")
    ap.add_argument("--pairs", type=int, default=4, help="baseline/tracked pairs")
    ap.add_argument("--repeats", type=int, default=3, help="cold-process repeats")
    ap.add_argument("--fixed-only", action="store_true", help="measure the fixed cost only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    tmp = tempfile.mkdtemp(prefix="robust-bench-")
    os.chdir(tmp)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"

    # fixed cost, cold processes (the store is created once first, as after a first run)
    env = dict(os.environ)
    _cold(_STAGE, env)
    bare = [_cold(_BARE, env) for _ in range(args.repeats)]
    staged = [_cold(_STAGE, env) for _ in range(args.repeats)]
    b0, s0 = statistics.median(bare), statistics.median(staged)
    print(
        f"fixed cost (cold process, median of {args.repeats}): {s0 - b0:.2f} s "
        f"(target < 3 s): {s0:.2f} s with an empty stage vs {b0:.2f} s imports only"
    )
    if args.fixed_only:
        return

    from robust import data, models
    from robust.tracking import stage
    from robust.training import defaults_for, fit
    from robust.utils import seed_everything

    ds = data.load("digits")
    cfg = defaults_for("digits")

    def train(epochs: int, on_epoch=None) -> float:
        seed_everything(0)
        model = models.for_dataset(ds)
        t0 = time.perf_counter()
        fit(
            model,
            ds.train,
            ds.val,
            epochs=epochs,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            optimizer=cfg.optimizer,
            seed=0,
            device="cpu",
            progress=False,
            on_epoch=on_epoch,
        )
        return time.perf_counter() - t0

    def tracked(epochs: int) -> float:
        t0 = time.perf_counter()
        with stage("bench", {"epochs": epochs}, force=True) as run, run.phase("fit"):
            train(epochs, on_epoch=lambda e, m: run.log_metrics(m, step=e))
        return time.perf_counter() - t0

    # warm up, then calibrate the number of epochs to --seconds
    tracked(2)
    per_epoch = train(10) / 10
    epochs = max(1, round(args.seconds / per_epoch))

    # pairs in ABBA order so a drift in machine speed cancels; the ratio is per pair
    base, cand = [], []
    for i in range(args.pairs):
        if i % 2 == 0:
            base.append(train(epochs))
            cand.append(tracked(epochs))
        else:
            cand.append(tracked(epochs))
            base.append(train(epochs))
    ratio = statistics.median(c / b for b, c in zip(base, cand, strict=True))
    b, c = statistics.median(base), statistics.median(cand)
    print(
        f"train digits_cnn {epochs} epochs, {args.pairs} pairs: {c:.1f} s tracked vs "
        f"{b:.1f} s baseline, median pair ratio {ratio:.3f}x, overhead "
        f"{100 * (ratio - 1):+.1f} % (target <= 5 %) "
        f"[baseline {', '.join(f'{x:.1f}' for x in base)}; "
        f"tracked {', '.join(f'{x:.1f}' for x in cand)}]"
    )


if __name__ == "__main__":
    main()
