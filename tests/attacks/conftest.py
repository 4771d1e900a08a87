"""Fixtures of the attack tests: batch sizes seen by a model, and the ``trained`` model shared
between test processes during mutation testing.

Every mutant of ``tools/mutation.sh`` runs its tests in a fresh pytest session, which would train
tests/conftest.py's digits model (4 s) again for each of some 2,600 mutants. With
``ROBUST_TEST_MODEL_CACHE`` set (the script sets it) the first session trains it as usual and
saves its weights there; later sessions load them. Without it this is tests/conftest.py's fixture.
Training does not use :mod:`robust.attacks`, so a mutant there cannot change the model.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from torch import nn


@pytest.fixture
def batch_sizes() -> Callable[..., contextlib.AbstractContextManager[list[int]]]:
    """``with batch_sizes(*modules) as sizes:`` records the batch size of every forward pass
    through ``modules``, also through copies of them (the hook is a plain function, which
    ``copy.deepcopy`` shares, and the attacks run a channels-last copy of a conv model)."""

    @contextlib.contextmanager
    def record(*modules: nn.Module) -> Iterator[list[int]]:
        sizes: list[int] = []
        handles = [
            m.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
            for m in modules
        ]
        try:
            yield sizes
        finally:
            for h in handles:
                h.remove()

    return record


@pytest.fixture(scope="session")
def trained(request, digits):
    cache = os.environ.get("ROBUST_TEST_MODEL_CACHE")
    if not cache:
        return request.getfixturevalue("trained")  # tests/conftest.py's
    from safetensors.torch import load_file, save_file

    from robust import models

    path = Path(cache) / "trained-digits.safetensors"
    if path.exists():
        model = models.for_dataset(digits, seed=0)
        model.load_state_dict(load_file(path))
        return model.eval()
    model = request.getfixturevalue("trained")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, partial)
    os.replace(partial, path)  # atomic: a concurrent session sees the whole file or none
    return model
