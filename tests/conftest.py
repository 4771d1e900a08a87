"""Fixtures shared by every test package: seeded RNGs and an isolated MLflow store."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

# Tests never write to the user's store: a test without a store of its own (and every
# subprocess it starts) gets this session's throwaway one, never ./mlruns or a server the
# user's MLFLOW_TRACKING_URI names; _never_the_users_store fails any test that still does.
ROOT = Path(__file__).resolve().parents[1]
USER_STORE = ROOT / "mlruns"
_SESSION_STORE = Path(tempfile.mkdtemp(prefix="robust-tests-store-"))
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_STORE}/mlflow.db"
for _name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
    os.environ.pop(_name, None)


# Under CI=true a skipped test fails the run, except a CUDA-only test (tests/markers.py) on a
# machine without CUDA: a skip there hides a missing dependency or service, never a pass.
_SKIPPED: list[tuple[str, str]] = []


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _record_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append((report.nodeid, _skip_reason(report)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _record_skip(report)  # a module-level pytest.skip / importorskip


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _record_skip(report)


def _cuda_reason() -> str:
    from tests.markers import CUDA_REASON  # imports torch: only once a skip needs judging

    return CUDA_REASON


def _forbidden_skips() -> list[tuple[str, str]]:
    if os.environ.get("CI") != "true" or not _SKIPPED:
        return []
    return [(node, reason) for node, reason in _SKIPPED if reason != _cuda_reason()]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):  # pytest-xdist worker: the controller decides
        return
    ok = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if _forbidden_skips() and session.exitstatus in ok:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    forbidden = _forbidden_skips()
    if forbidden:
        terminalreporter.section("skipped tests under CI=true", sep="=", red=True, bold=True)
        terminalreporter.line(
            f"CI=true: {len(forbidden)} test(s) skipped for a reason other than "
            f"{_cuda_reason()!r} (tests/markers.py requires_cuda); the run fails:",
            red=True,
        )
        for node, reason in forbidden:
            terminalreporter.line(f"  SKIPPED {node}: {reason}", red=True)


def _store_state() -> dict[str, int]:
    """Every file and folder under ./mlruns with its modification time."""
    if not USER_STORE.exists():
        return {}
    return {str(p.relative_to(USER_STORE)): p.stat().st_mtime_ns for p in USER_STORE.rglob("*")}


@pytest.fixture(autouse=True)
def _never_the_users_store(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test that creates, changes or removes anything under the project's ./mlruns."""
    before = _store_state()
    yield
    after = _store_state()
    if after != before:
        changed = sorted(
            {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        )
        pytest.fail(
            f"{request.node.nodeid} wrote into the user's store {USER_STORE}: "
            f"{', '.join(changed[:5])}{' …' if len(changed) > 5 else ''}",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _seed() -> None:
    from robust.utils import seed_everything

    seed_everything(0)


@contextlib.contextmanager
def isolated_store(root: Path, uri: str | None = None) -> Iterator[str]:
    """A fresh SQLite tracking store in ``root`` (or the store at ``uri``, e.g. a server's),
    ``root`` the working directory meanwhile, with no run adopted from the environment; yields
    its URI and ends any run left active."""
    import mlflow

    uri = uri or f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mp.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        mlflow.set_tracking_uri(uri)
        # an active experiment an earlier test (or an adopted run) set must not leak into
        # this store: MLflow's default one exists in every store
        mlflow.set_experiment(experiment_id="0")
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # set_experiment sets it; the CLI's alone
        try:
            yield uri
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()


def experiment_ids(client) -> list[str]:
    """Every experiment of ``client``'s store: stages go to ``robust-<dataset>``, tests to
    whichever experiment they made, so a search over all of them finds every run."""
    return [e.experiment_id for e in client.search_experiments()]


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

    # seeded: unseeded weights would depend on which tests drew from torch's RNG before this
    # fixture first ran, so thresholds measured on one order could fail on another
    model = models.for_dataset(digits, seed=0)
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
