"""The shared tracking server's command line, in one place: what docker/compose.yaml runs, what
the tests start natively and what the README tells a group to run.

A group's store is one ``mlflow server`` on a PostgreSQL backend with proxied artifacts
(``--serve-artifacts --artifacts-destination``): clients need only
``MLFLOW_TRACKING_URI=http://host:port`` and never a path on the server's disk. The defaults are
sized for a small host: MLflow's own defaults start 4 request workers plus its job runner (15
processes, about 3 GB); one worker with job execution off takes about 0.5 GB.
"""

from __future__ import annotations

SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""Environment of the server process: no background job runner (robust submits no jobs)."""
WORKERS = 1
"""Request workers: one is plenty for a group's stages, which batch their writes."""


def server_command(
    backend_store_uri: str,
    artifacts_destination: str,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = WORKERS,
    mlflow: str = "mlflow",
) -> list[str]:
    """The ``mlflow server`` argv for the shared store.

    Args:
        backend_store_uri: ``postgresql://user:password@host:port/database`` (psycopg 3, which
            SQLAlchemy 2.1 maps ``postgresql://`` to).
        artifacts_destination: where the server keeps artifacts (a directory on its disk or an
            object store URI); clients reach them through the server (``mlflow-artifacts:``).
        host: interface to bind (``0.0.0.0`` inside a container).
        port: TCP port.
        workers: request worker processes.
        mlflow: the ``mlflow`` executable.
    """
    return [
        mlflow, "server",
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", artifacts_destination,
        "--serve-artifacts",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
