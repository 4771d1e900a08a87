"""The one skip a CI run allows: tests that need a CUDA GPU, on a machine without one.

``tests/conftest.py`` fails a ``CI=true`` run that skipped any test for another reason, so a
CUDA-only test is marked with :data:`requires_cuda` (never a skipif of its own) and a skip is
recognised as the allowed one by :data:`CUDA_REASON`.
"""

from __future__ import annotations

import pytest
import torch

CUDA_REASON = "needs a CUDA GPU"
"""The skip reason of :data:`requires_cuda`, the only reason a ``CI=true`` run tolerates."""

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=CUDA_REASON)
"""Marks a test that runs only where CUDA is available."""
