"""What the stage run costs: the same training with and without it, in one process.

Workload: the digits CNN trained for as many epochs as fill ``--seconds`` (calibrated first).
Baseline: ``fit`` alone. Candidate: the same ``fit`` inside ``stage(...)`` with a phase and
per-epoch metrics (what ``pipelines/train.py`` does), in a fresh SQLite store. The fixed cost is
measured on an empty stage (open + close: run creation, codecarbon start/stop, system metrics,
final log_batch), median of ``--repeats``.

Expected: overhead ≤ 5 % on a 60 s stage and a fixed cost under 3 s.
Run: ``python benchmarks/tracking_overhead.py [--seconds 60] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="target stage length")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the fixed-cost probe")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    tmp = tempfile.mkdtemp(prefix="robust-bench-")
    os.chdir(tmp)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"

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

    # warm up (imports, first store creation) and calibrate epochs to --seconds
    with stage("bench", {"warmup": True}, force=True):
        pass
    per_epoch = train(3) / 3
    epochs = max(1, round(args.seconds / per_epoch))

    fixed = []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        with stage("bench", {"empty": i}, force=True):
            pass
        fixed.append(time.perf_counter() - t0)

    def tracked() -> float:
        t0 = time.perf_counter()
        with stage("bench", {"epochs": epochs}, force=True) as run, run.phase("fit"):
            train(epochs, on_epoch=lambda e, m: run.log_metrics(m, step=e))
        return time.perf_counter() - t0

    base = [train(epochs), train(epochs)]
    cand = [tracked(), tracked()]
    b, c = statistics.median(base), statistics.median(cand)
    f = statistics.median(fixed)
    print(
        f"fixed cost (empty stage, median of {args.repeats}): {f:.2f} s "
        f"(target < 3 s) [{', '.join(f'{x:.2f}' for x in fixed)}]"
    )
    print(
        f"train digits_cnn {epochs} epochs: {c:.1f} s tracked vs {b:.1f} s baseline, "
        f"{c / b:.3f}x, overhead {100 * (c - b) / b:+.1f} % (target <= 5 %) "
        f"[baseline {', '.join(f'{x:.1f}' for x in base)}; "
        f"tracked {', '.join(f'{x:.1f}' for x in cand)}]"
    )


if __name__ == "__main__":
    main()
