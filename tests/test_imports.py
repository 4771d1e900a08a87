"""Importing robust is cheap: mlflow, codecarbon and pynvml load only when a stage runs."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import robust, robust.data, robust.models, robust.training, robust.evaluation, robust.tracking
heavy = [m for m in ("mlflow", "codecarbon", "pynvml") if m in sys.modules]
print(",".join(heavy))
"""


def test_importing_robust_loads_no_tracking_libraries():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    assert out == ""
