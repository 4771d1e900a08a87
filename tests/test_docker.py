"""docker/: the shared tracking stack, checked by parsing (no docker daemon on our machines).

The ``mlflow`` service's command must be :func:`robust.tracking.server.server_command`'s, the
same command line tests/services.py starts natively, so the stack and the tested server cannot
drift; the image must install every dependency of pyproject.toml with torch pinned as there.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from robust.tracking.server import SERVER_ENV, WORKERS, server_command

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
PASSWORD = "s3cret"

_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax as compose.yaml uses it: ``${X}``, ``${X:-default}``,
    ``${X:?error}`` (unset or empty ``X`` with ``:?`` is an error, as in ``docker compose``)."""

    def value(m: re.Match) -> str:
        name, op, arg = m.groups()
        if env.get(name):
            return env[name]
        if op == "?":
            raise ValueError(f"required variable {name} is missing a value: {arg}")
        return arg if op == "-" else ""

    return _VARIABLE.sub(value, text)


def _compose(env: dict[str, str]) -> dict:
    return yaml.safe_load(interpolate((DOCKER / "compose.yaml").read_text(), env))


@pytest.fixture
def compose() -> dict:
    return _compose({"POSTGRES_PASSWORD": PASSWORD})


@pytest.fixture
def services(compose) -> dict:
    return compose["services"]


def _dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments gone."""
    lines = [
        line
        for line in (DOCKER / "Dockerfile").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def _args(instruction: str) -> list[str]:
    return [rest for word, rest in _instructions() if word == instruction]


def _mounts(service: dict) -> dict[str, str]:
    """``source:target[:mode]`` volumes as {target: source}."""
    return {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}


# ---- compose.yaml -----------------------------------------------------------------------------
def test_the_stack_has_postgres_the_server_and_robust(services):
    assert set(services) == {"postgres", "mlflow", "robust"}
    assert services["postgres"]["image"] == "postgres:15"
    assert "run" in services["robust"]["profiles"]  # not started by `up`, only by `run`


def test_the_database_password_is_required():
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD is missing a value"):
        _compose({})


def test_the_server_command_is_server_command(services):
    command = services["mlflow"]["command"]
    backend = command[command.index("--backend-store-uri") + 1]
    assert command == server_command(backend, "/mlartifacts", host="0.0.0.0", port=5000)
    assert command[:2] == ["mlflow", "server"]
    assert command[-2:] == ["--workers", str(WORKERS)] and "--serve-artifacts" in command


def test_the_backend_is_the_mlflow_database_of_the_postgres_service(services):
    command = services["mlflow"]["command"]
    url = urlsplit(command[command.index("--backend-store-uri") + 1])
    env = services["postgres"]["environment"]
    assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
    assert (url.username, url.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
    assert url.password == PASSWORD
    assert url.path == "/mlflow" == "/" + env["POSTGRES_DB"]


def test_the_server_environment_is_server_env(services):
    env = services["mlflow"]["environment"]
    assert SERVER_ENV.items() <= env.items()


def test_the_server_answers_the_robust_service_and_refuses_other_hosts(services):
    from mlflow.server.security_utils import is_allowed_host_header

    allowed = services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    client = urlsplit(services["robust"]["environment"]["MLFLOW_TRACKING_URI"]).netloc
    assert client == "mlflow:5000"
    for host in (client, "localhost:5000", "127.0.0.1:5000", "192.168.1.20:5000"):
        assert is_allowed_host_header(allowed, host), host
    assert not is_allowed_host_header(allowed, "evil.example:5000")


def test_both_databases_are_created(services):
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_DB"] == "mlflow"
    mounts = _mounts(postgres)
    init = (DOCKER / mounts["/docker-entrypoint-initdb.d"]).resolve()
    sql = " ".join(p.read_text() for p in sorted(init.glob("*.sql")))
    assert re.search(r"CREATE DATABASE optuna\s*;", sql)


def test_data_live_on_named_volumes(compose, services):
    assert {"pgdata", "mlartifacts"} <= set(compose["volumes"])
    assert _mounts(services["postgres"])["/var/lib/postgresql/data"] == "pgdata"
    assert _mounts(services["mlflow"])["/mlartifacts"] == "mlartifacts"


def test_the_server_port_is_published(services):
    assert "5000:5000" in services["mlflow"]["ports"]


def test_healthchecks(services):
    pg = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in pg and "mlflow" in pg
    server = " ".join(services["mlflow"]["healthcheck"]["test"])
    assert "http://localhost:5000/health" in server


def test_services_wait_for_healthy_dependencies(services):
    assert services["mlflow"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["robust"]["depends_on"] == {"mlflow": {"condition": "service_healthy"}}


def test_robust_and_the_server_run_the_robust_image(services):
    for name in ("mlflow", "robust"):
        build = services[name]["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == (
            DOCKER / "Dockerfile"
        )
        assert "download.pytorch.org/whl/cpu" in build["args"]["TORCH_INDEX"]
    assert services["robust"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # the reports' figures and links: an address a browser outside the stack reaches
    assert "mlflow:5000" not in services["robust"]["environment"]["ROBUST_UI_URL"]


def test_the_readme_tune_example_uses_the_optuna_database():
    text = (DOCKER / "README.md").read_text()
    urls = re.findall(r"-P storage=(postgresql://[^\s`]+)", text)
    assert urls and all(urlsplit(u).path == "/optuna" for u in urls)


# ---- Dockerfile -------------------------------------------------------------------------------
def test_the_image_is_python_3_11_slim():
    (base,) = _args("FROM")
    assert base.startswith("python:3.11") and "slim" in base


def test_torch_is_pinned_as_in_pyproject_with_a_cuda_build_argument():
    (pin,) = [d for d in _dependencies() if _name(d) == "torch"]
    assert pin == "torch==2.13.0"
    torch = [r for r in _args("RUN") if "pip install torch" in r]
    assert len(torch) == 1 and pin in shlex.split(torch[0])
    assert '--index-url "${TORCH_INDEX}"' in torch[0]
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cpu" in _args("ARG")


def test_every_dependency_of_pyproject_is_installed():
    installed: set[str] = set()
    for run in _args("RUN"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if words[:2] != ["pip", "install"]:
                continue
            targets = [w for w in words[2:] if not w.startswith(("-", "$")) and "://" not in w]
            project = [t for t in targets if t == "." or t.startswith(".[")]
            installed |= {_name(t) for t in targets if t not in project}
            if project and "--no-deps" not in words:  # the project and its dependencies
                installed |= {_name(d) for d in _dependencies()}
                for extra in re.findall(r"\[(.*)\]", project[0])[:1]:
                    for name in extra.split(","):
                        installed |= {_name(d) for d in _extras()[name.strip()]}
    assert {_name(d) for d in _dependencies()} <= installed
    assert "psycopg" in installed  # the server's PostgreSQL driver comes with robust
    assert "ray" in installed  # the image can join a Ray cluster (ray start)
    copied = " ".join(_args("COPY"))
    for path in ("pyproject.toml", "MLproject", "robust", "pipelines"):
        assert re.search(rf"(^|\s){path}(\s|$)", copied), path


def test_the_image_runs_as_a_non_root_user():
    users = _args("USER")
    assert users and users[-1] not in ("root", "0")
    assert any("useradd" in r and users[-1] in r for r in _args("RUN"))


def test_the_build_context_keeps_what_the_image_copies():
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*")] == "*"
    for args in _args("COPY"):
        for source in [a for a in args.split() if not a.startswith("--")][:-1]:
            assert f"!{source}" in ignore or f"!{source}/" in ignore, source


# ---- the entrypoint -----------------------------------------------------------------------------
def _entrypoint(tmp_path: Path, *args: str) -> str:
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    fake = bin_ / "mlflow"
    fake.write_text('#!/bin/sh\necho "mlflow $*"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_the_dockerfile_uses_the_entrypoint():
    assert any("docker/entrypoint.sh /usr/local/bin/robust-entrypoint" in c for c in _args("COPY"))
    assert _args("ENTRYPOINT") == ['["robust-entrypoint"]']
    assert _args("WORKDIR") == ["/app"]  # where MLproject is


def test_every_entry_point_runs_with_mlflow_run(tmp_path):
    entries = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]
    for entry in entries:
        out = _entrypoint(tmp_path, entry, "-P", "epochs=3")
        assert out == f"mlflow run . -e {entry} --env-manager local -P epochs=3"


def test_no_arguments_or_only_parameters_run_main(tmp_path):
    assert _entrypoint(tmp_path) == "mlflow run . -e main --env-manager local"
    assert _entrypoint(tmp_path, "-P", "configs=c2") == (
        "mlflow run . -e main --env-manager local -P configs=c2"
    )


def test_other_commands_run_as_given(tmp_path):
    assert _entrypoint(tmp_path, "mlflow", "server", "--port", "5000") == (
        "mlflow server --port 5000"
    )
    assert _entrypoint(tmp_path, "python", "-c", "print('as given')") == "as given"
