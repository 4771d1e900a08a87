"""Importing robust is cheap: mlflow, codecarbon and pynvml load only when a stage runs.

torch itself imports pynvml when it is installed (torch/cuda/__init__.py), so the check is
what importing robust adds on top of ``import torch``.
"""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import torch
before = set(sys.modules)
import robust, robust.data, robust.models, robust.training, robust.evaluation, robust.tracking
import robust.attacks
added = set(sys.modules) - before
print(",".join(m for m in ("mlflow", "codecarbon", "pynvml") if m in added))
"""


def test_importing_robust_loads_no_tracking_libraries():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert out == ""
