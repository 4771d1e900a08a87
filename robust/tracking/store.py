"""Where runs live: the tracking URI in force and the process's MLflow client.

The default store is ``sqlite:///mlruns/mlflow.db`` (relative to the working directory) with
artifacts under ``mlruns/``; ``MLFLOW_TRACKING_URI`` or ``mlflow.set_tracking_uri`` overrides
it. MLflow's own default
(``sqlite:///mlflow.db``) is a different file, so the README exports the variable for the
``mlflow`` CLI too.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from robust.errors import ConfigError
from robust.utils import redact

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
REUSED_FROM_TAG = "robust.reused_from"
log = logging.getLogger(__name__)


def tracking_uri() -> str:
    """The tracking URI in force: ``MLFLOW_TRACKING_URI``, else one set with
    ``mlflow.set_tracking_uri`` in this process, else the project default."""
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    if "mlflow" in sys.modules:  # never import mlflow just to ask
        from mlflow.tracking._tracking_service import utils

        if utils.is_tracking_uri_set():
            return str(utils.get_tracking_uri())
    return DEFAULT_TRACKING_URI


def configure() -> str:
    """Point MLflow at the store in force (creating ``mlruns/`` for the default) and return it.

    The first time in a process, the store is opened and checked: an unknown scheme, a SQLite
    file that cannot be created or opened, a server or database that does not answer, each is
    a one-line ConfigError naming the URI and what to do (instead of MLflow's traceback, or its
    minutes of retries against a server that is not there).
    """
    import mlflow

    if not sys.stderr.isatty():  # MLflow's download bars would flood logs and CI output
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri()
    if uri in _READY:
        mlflow.set_tracking_uri(uri)
        return uri
    scheme = uri.partition(":")[0].partition("+")[0] if ":" in uri else ""
    if scheme and scheme not in SCHEMES:
        raise ConfigError(
            f"the tracking store {redact(uri)} has an unknown scheme {scheme}: (allowed: "
            f"{', '.join(SCHEMES)}); {_FIX}"
        )
    try:
        if uri == DEFAULT_TRACKING_URI:
            Path("mlruns").mkdir(exist_ok=True)
        if uri.startswith(("http://", "https://")):
            _probe_server(uri)
        if uri.startswith(("postgresql", "mysql", "mssql")):
            _probe_database(uri)
        if uri.startswith("sqlite:///"):
            _create_sqlite_schema(uri)
        else:
            _open(uri)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(_cannot_open(uri, exc)) from None
    mlflow.set_tracking_uri(uri)  # only once it opened: a bad URI leaves the old one in force
    _READY.add(uri)
    return uri


_FIX = (
    "set MLFLOW_TRACKING_URI to sqlite:///<writable path>.db (one machine), http://host:port "
    "(a tracking server, see docker/README.md) or postgresql://user@host:port/database"
)


SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "file")
"""The stores robust accepts (MLflow's, without Databricks); a plain path is a file store."""


def _cannot_open(uri: str, exc: BaseException) -> str:
    reason = " ".join(f"{type(exc).__name__}: {redact(str(exc), uri)}".split())[:300]
    return f"the tracking store {redact(uri)} cannot be opened ({reason}); {_FIX}"


def _probe_server(uri: str, timeout: float = 10) -> None:
    """Ask ``<uri>/health`` once, so that a server that is not there fails in seconds."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as r:
            if r.status == 200:
                return
            reason = f"HTTP {r.status}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = " ".join(str(getattr(exc, "reason", exc)).split())
    raise ConfigError(
        f"no MLflow tracking server answers at {redact(uri)} ({reason}); start it "
        "(docker/README.md) or point MLFLOW_TRACKING_URI at a running one"
    )


def _probe_database(uri: str, timeout: int = 10) -> None:
    """Connect once with a short timeout (MLflow itself retries for minutes)."""
    import sqlalchemy

    args = {"connect_timeout": timeout} if uri.startswith("postgresql") else {}
    engine = sqlalchemy.create_engine(uri, connect_args=args)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _open(uri: str) -> None:
    """Open a non-SQLite store and make one cheap request (any failure raises)."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


_CLIENTS: dict[str, Any] = {}
_READY: set[str] = set()


def _create_sqlite_schema(uri: str) -> None:
    """Open a SQLite store under an exclusive file lock, so that processes starting at the same
    moment on a store that does not exist yet create its schema one after the other (MLflow's
    migration fails in all but one otherwise: "Online migration expected to match one row").
    The store is cached per URI by MLflow, so this costs one lock per process."""
    import fcntl

    from mlflow import MlflowClient

    path = Path(uri.removeprefix("sqlite:///"))
    parent = next((q for q in (path.parent, *path.parent.parents) if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(
            f"the tracking store {uri} cannot be opened: {parent} is a file, not a directory; "
            f"{_FIX}"
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"the tracking store {uri} cannot be opened: its directory {path.parent} does not "
            f"exist; create it or {_FIX}"
        )
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise ConfigError(
            f"the tracking store {uri} cannot be opened: "
            f"{path if path.exists() else path.parent} is not writable; {_FIX}"
        )
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def client():
    """The process's ``MlflowClient`` on the store in force (one per tracking URI, so a remote
    server's connection pool is reused instead of rebuilt for every look-up)."""
    from mlflow import MlflowClient

    uri = configure()
    if uri not in _CLIENTS:
        _CLIENTS[uri] = MlflowClient(tracking_uri=uri)
    return _CLIENTS[uri]


def for_workers(*, cluster: bool) -> str:
    """The tracking URI in force as other processes must be given it: a relative SQLite path
    made absolute (a Ray worker does not start in this directory). ``cluster``: the workers may
    run on other machines, so the store must be a server or a database they reach, not a file
    of this one.

    Raises:
        ConfigError: ``cluster`` with a SQLite or file store.
    """
    uri = tracking_uri()
    local = uri.startswith(("sqlite:", "file:")) or ":" not in uri
    if cluster and local:
        raise ConfigError(
            f"a Ray cluster's workers cannot log to the tracking store {redact(uri)}, a file on "
            "this machine; set MLFLOW_TRACKING_URI to the shared tracking server "
            "(http://<host>:5000, README 'Shared tracking server'), or leave ray_address unset "
            "for a local Ray instance"
        )
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    if ":" not in uri:  # a plain directory of a file store
        return str(Path(uri).resolve())
    return uri
