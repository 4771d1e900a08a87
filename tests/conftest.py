"""Fixtures shared by every test package: seeded RNGs and an isolated MLflow store."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@pytest.fixture(autouse=True)
def _seed() -> None:
    from robust.utils import seed_everything

    seed_everything(0)


@contextlib.contextmanager
def isolated_store(root: Path) -> Iterator[str]:
    """A fresh SQLite tracking store in ``root`` (the working directory meanwhile), with no run
    adopted from the environment; yields its URI and ends any run left active."""
    import mlflow

    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mp.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        mlflow.set_tracking_uri(uri)
        try:
            yield uri
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()


@pytest.fixture
def mlflow_store(tmp_path):
    """A fresh SQLite tracking store in ``tmp_path`` (the working directory during the test)."""
    with isolated_store(tmp_path) as uri:
        yield uri


# A small trained digits model shared by the attack and guidance tests (trained once per session).
@pytest.fixture(scope="session")
def digits():
    from robust import data

    return data.load("digits", seed=0)


@pytest.fixture(scope="session")
def trained(digits):
    from robust import models
    from robust.training import fit

    model = models.for_dataset(digits)
    fit(
        model,
        digits.train,
        digits.val,
        epochs=8,
        lr=1e-3,
        batch_size=32,
        optimizer="adam",
        seed=0,
        device="cpu",
        progress=False,
    )
    return model.eval()


# Real services (tests/services.py): one PostgreSQL cluster and one mlflow server per session.
@pytest.fixture(scope="session")
def postgres():
    from tests.services import postgres as start

    with start() as pg:
        yield pg


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    """A real ``mlflow server`` on a PostgreSQL database with proxied artifacts."""
    from tests.services import mlflow_server as start

    backend = postgres.create("mlflow")
    with start(backend, tmp_path_factory.mktemp("server")) as server:
        yield server


@pytest.fixture
def optuna_storage(postgres, request):
    """A fresh PostgreSQL database for one test's Optuna studies; its URL."""
    import hashlib
    import re

    name = request.node.nodeid
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]  # distinct even when truncated alike
    stem = re.sub(r"\W", "_", request.node.name)[:30].lower()
    return postgres.create(f"optuna_{stem}_{digest}")
