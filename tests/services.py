"""Real services for tests: a throwaway PostgreSQL cluster and an ``mlflow server`` on it.

PostgreSQL is the machine's own (``initdb``/``pg_ctl`` from ``pg_config --bindir``), in a
temporary directory, on a free port, trusting local connections; as root it runs as the
``postgres`` user (PostgreSQL refuses to run as root). The server is started with
:func:`robust.tracking.server.server_command`, the command line docker/compose.yaml runs too.
Where the binaries are missing a test is skipped with the reason, except under ``CI=true``,
where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from robust.tracking.server import SERVER_ENV, server_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing(reason: str) -> None:
    """Skip with ``reason``, or fail under CI (a missing service is never a silent skip)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
    pytest.skip(reason)


def _bindir() -> Path | None:
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(out.stdout.strip())
    return path if out.returncode == 0 and (path / "initdb").exists() else None


@dataclass
class Postgres:
    """A running cluster; ``url(name)`` is a database URL, ``create(name)`` makes one."""

    port: int
    bindir: Path
    user: str = "postgres"
    host: str = "127.0.0.1"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create(self, database: str) -> str:
        subprocess.run(
            [str(self.bindir / "createdb"), "-h", self.host, "-p", str(self.port),
             "-U", self.user, database],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return self.url(database)


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """Start a throwaway PostgreSQL cluster; stop it and delete its files on exit."""
    bindir = _bindir()
    if bindir is None:
        missing("PostgreSQL binaries not found (pg_config --bindir has no initdb)")
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="robust-pg-"))  # /tmp: the postgres user can reach it
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*ctl, "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        yield Postgres(port, bindir)
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Server:
    uri: str
    backend: str
    artifacts: Path
    process: subprocess.Popen


def wait_until_up(uri: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited {process.returncode}:\n{log.read_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{uri}/health", timeout=2) as r,
        ):
            if r.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"mlflow server not up after {timeout} s:\n{log.read_text()}")


@contextlib.contextmanager
def mlflow_server(backend: str, root: Path) -> Iterator[Server]:
    """``mlflow server`` on ``backend`` with proxied artifacts under ``root``; stopped on exit."""
    port = free_port()
    artifacts = root / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    argv = server_command(backend, str(artifacts), port=port, mlflow=mlflow)
    log = root / "server.log"
    env = {**os.environ, **SERVER_ENV}
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "w") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(uri, process, log)
        yield Server(uri, backend, artifacts, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=30)
