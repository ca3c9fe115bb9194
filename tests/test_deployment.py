"""The Docker deployment, checked without Docker: docker-compose.yml and the Dockerfile are
parsed and held to what the server needs (the admin token wired in from .env, read-only photos
inside the allowed roots, health checks on /readyz, the GPU reservation, the torch pin of
pyproject.toml), and the container's own scripts (docker/entrypoint.sh, the database wait, the
health check) are run here as they run in the image: the entrypoint under /bin/sh with a
recording stand-in for `pixseek`, and once with the real one against SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, ClassVar

import pytest
import yaml

from search.catalog.migrate import SCHEMA_REVISION
from search.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
SERVER_PORT = 8000  # the port the server listens on inside the container

# --- docker-compose.yml ---------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$)")


class MissingVariable(Exception):
    """Compose stops with `message` because `name` is unset or empty (`${NAME:?message}`)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}` and `$$`,
    applied to every string in a parsed compose file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if name is None:
            return "$"
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in {":-", "-"}:
            return arg if unset else str(current)
        if op in {":?", "?"} and unset:
            raise MissingVariable(name, arg)
        return current or ""

    return _VARIABLE.sub(substitute, value)


def referenced_variables(text: str) -> set[str]:
    return {m.group("name") for m in _VARIABLE.finditer(text) if m.group("name")}


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines, as compose reads .env (comments and blank lines skipped)."""
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            env[name.strip()] = value.strip()
    return env


COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
ENV_EXAMPLE = read_env_file(ROOT / ".env.example")
SECRETS = {"PIXSEEK_ADMIN_TOKEN": "admin-token-from-env", "POSTGRES_PASSWORD": "db-password_1"}


def compose(overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as compose would run it with .env.example plus `overrides` as .env."""
    return interpolate(yaml.safe_load(COMPOSE_TEXT), {**ENV_EXAMPLE, **(overrides or {})})


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return compose(SECRETS)["services"]


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Container path -> (source, read-only), from short (`src:dst[:ro]`) or long syntax."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *options = volume.split(":")
            found[target] = (source, "ro" in options)
        else:
            found[volume["target"]] = (volume["source"], bool(volume.get("read_only")))
    return found


def test_compose_runs_a_database_a_server_and_a_gpu_indexer(services: dict[str, Any]) -> None:
    assert set(services) == {"db", "api", "indexer"}
    assert "profiles" not in services["db"] and "profiles" not in services["api"]
    assert services["indexer"]["profiles"] == ["gpu"]


def test_compose_database_keeps_its_data_and_reports_health(services: dict[str, Any]) -> None:
    db = services["db"]
    assert db["image"] == "postgres:15"
    source, read_only = mounts(db)["/var/lib/postgresql/data"]
    assert source in compose(SECRETS)["volumes"] and not read_only, "a named volume"
    test = db["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "pg_isready", test
    assert {"--username=pixseek", "--dbname=pixseek"} <= set(test)


def test_compose_services_wait_for_a_healthy_database(services: dict[str, Any]) -> None:
    for name in ("api", "indexer"):
        assert services[name]["depends_on"] == {"db": {"condition": "service_healthy"}}, name


def test_compose_api_serves_on_all_interfaces_and_checks_readyz(services: dict[str, Any]) -> None:
    api = services["api"]
    assert api["command"] == ["pixseek", "serve", "--host", "0.0.0.0", "--port", str(SERVER_PORT)]
    assert "entrypoint" not in api, "the image's entrypoint runs `pixseek db upgrade` first"
    test = api["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "/opt/pixseek/docker/healthcheck.py"]
    assert test[3] == f"http://127.0.0.1:{SERVER_PORT}/readyz"
    assert api["ports"] == [f"127.0.0.1:8000:{SERVER_PORT}"], "loopback unless .env says"
    published = compose({**SECRETS, "PUBLISH_ADDRESS": "0.0.0.0", "PUBLISH_PORT": "9000"})
    assert published["services"]["api"]["ports"] == [f"0.0.0.0:9000:{SERVER_PORT}"]


def test_compose_wires_the_admin_token_from_env_into_the_api(services: dict[str, Any]) -> None:
    assert services["api"]["environment"]["PIXSEEK_ADMIN_TOKEN"] == "admin-token-from-env"
    assert "PIXSEEK_ADMIN_TOKEN" not in services["indexer"]["environment"], "the CLI needs none"
    # Unset or left empty as in .env.example, compose stops with a message instead of starting
    # a server that would refuse to listen (or, worse, listen with the admin routes open).
    with pytest.raises(MissingVariable) as missing:
        compose({"POSTGRES_PASSWORD": "x"})
    assert missing.value.name == "PIXSEEK_ADMIN_TOKEN"
    assert ".env.example" in missing.value.message
    with pytest.raises(MissingVariable) as missing:
        compose({"PIXSEEK_ADMIN_TOKEN": "x"})
    assert missing.value.name == "POSTGRES_PASSWORD"


def test_compose_mounts_photos_read_only_inside_the_allowed_roots(
    services: dict[str, Any],
) -> None:
    photos = {name: mounts(services[name])["/photos"] for name in ("api", "indexer")}
    assert all(read_only for _, read_only in photos.values()), photos
    assert photos["api"][0] == photos["indexer"][0] == ENV_EXAMPLE["PHOTOS"]
    assert compose({**SECRETS, "PHOTOS": "/srv/pictures"})["services"]["api"]["volumes"][2] == (
        "/srv/pictures:/photos:ro"
    )
    assert services["indexer"]["command"] == ["pixseek", "index", "/photos"]
    allowed = settings_of(services["api"]).allowed_roots
    assert [PurePosixPath(root) for root in allowed] == [PurePosixPath("/photos")]


def test_compose_services_share_image_database_data_and_model_cache(
    services: dict[str, Any],
) -> None:
    api, indexer = services["api"], services["indexer"]
    assert api["image"] == indexer["image"] == "pixseek:cpu"
    assert api["build"] == indexer["build"] == {"context": ".", "args": {"TORCH_VARIANT": "cpu"}}
    gpu = compose({**SECRETS, "TORCH_VARIANT": "cuda"})["services"]["indexer"]
    assert gpu["image"] == "pixseek:cuda" and gpu["build"]["args"]["TORCH_VARIANT"] == "cuda"
    for name in ("api", "indexer"):
        settings = settings_of(services[name])
        assert settings.database_url == (
            "postgresql+psycopg://pixseek:db-password_1@db:5432/pixseek"
        ), name
        volumes = mounts(services[name])
        assert volumes[str(settings.data_dir)] == ("pixseek-data", False), name
        assert volumes["/cache"] == ("model-cache", False), name
        assert PurePosixPath(settings.cache_dir).is_relative_to("/cache"), name
        assert PurePosixPath(services[name]["environment"]["HF_HOME"]).is_relative_to("/cache")
    db = services["db"]["environment"]
    assert (db["POSTGRES_USER"], db["POSTGRES_PASSWORD"], db["POSTGRES_DB"]) == (
        "pixseek",
        "db-password_1",
        "pixseek",
    )


def test_compose_indexer_reserves_an_nvidia_gpu(services: dict[str, Any]) -> None:
    indexer = services["indexer"]
    (device,) = indexer["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"], device
    assert settings_of(indexer).device == "cuda"
    assert indexer["healthcheck"] == {"disable": True}, "a batch job has no /readyz to answer"
    assert "ports" not in indexer


def test_compose_containers_stop_cleanly_and_drop_privileges(services: dict[str, Any]) -> None:
    for name in ("api", "indexer"):
        service = services[name]
        assert service["init"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name


def settings_of(service: dict[str, Any]) -> Settings:
    """The pixseek Settings a container of `service` starts with (empty variables unset, as the
    entrypoint does), which also checks that each PIXSEEK_* variable names a setting."""
    env = {k: str(v) for k, v in service["environment"].items() if str(v) != ""}
    unknown = [
        name
        for name in env
        if name.startswith("PIXSEEK_")
        and name.removeprefix("PIXSEEK_").lower() not in (Settings.model_fields)
    ]
    assert not unknown, f"not pixseek settings (see search/settings.py): {unknown}"
    pixseek = {k: v for k, v in env.items() if k.startswith("PIXSEEK_")}
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("PIXSEEK_")]:
            patch.delenv(name)
        for name, value in pixseek.items():
            patch.setenv(name, value)
        return Settings()


def test_env_example_defines_every_variable_the_compose_file_uses() -> None:
    used = referenced_variables(COMPOSE_TEXT)
    assert used - set(ENV_EXAMPLE) == set(), "add them to .env.example"
    assert set(ENV_EXAMPLE) - used == set(), ".env.example sets variables compose never reads"
    bare = re.findall(r"\$[A-Za-z_]", COMPOSE_TEXT)
    assert not bare, f"write variables as ${{NAME}}: {bare}"
    settings_names = {f"PIXSEEK_{name.upper()}" for name in Settings.model_fields}
    unknown = {n for n in ENV_EXAMPLE if n.startswith("PIXSEEK_")} - settings_names
    assert not unknown, f"not pixseek settings: {unknown}"


def test_env_example_leaves_the_secrets_empty_and_says_how_to_make_them() -> None:
    text = (ROOT / ".env.example").read_text()
    assert ENV_EXAMPLE["PIXSEEK_ADMIN_TOKEN"] == "" and ENV_EXAMPLE["POSTGRES_PASSWORD"] == ""
    assert "secrets.token_urlsafe(32)" in text


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in lines]


INSTRUCTIONS = dockerfile_instructions()


def instruction(name: str) -> list[str]:
    return [args for kind, args in INSTRUCTIONS if kind == name]


def build_args() -> dict[str, str]:
    return dict(arg.partition("=")[::2] for arg in instruction("ARG"))


def exec_form(args: str) -> list[str]:
    parsed = yaml.safe_load(args)  # JSON arrays are YAML
    assert isinstance(parsed, list), f"use the exec (JSON array) form: {args}"
    return parsed


def pyproject_pins() -> dict[str, str]:
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dependency in dependencies:
        pinned = re.fullmatch(r"(torch|torchvision)==(\S+)", dependency)
        if pinned:
            pins[pinned[1]] = pinned[2]
    assert set(pins) == {"torch", "torchvision"}, dependencies
    return pins


def test_dockerfile_base_image_is_a_pinned_slim_python() -> None:
    (base,) = instruction("FROM")
    image = build_args()["PYTHON_IMAGE"] if base == "${PYTHON_IMAGE}" else base
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image), image


def test_dockerfile_installs_the_torch_pair_pinned_in_pyproject() -> None:
    pins = pyproject_pins()
    (install,) = [run for run in instruction("RUN") if "torch==" in run]
    found = dict(re.findall(r'"?(torch|torchvision)==([^\s"]+)', install))
    assert found == pins, f"Dockerfile installs {found}, pyproject.toml pins {pins}"
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -e ." in makefile, "make install takes the pins from pyproject"


def test_dockerfile_selects_a_cuda_build_of_torch_by_build_arg() -> None:
    assert build_args()["TORCH_VARIANT"] == "cpu"
    (install,) = [run for run in instruction("RUN") if "torch==" in run]
    assert "cpu) index=https://download.pytorch.org/whl/cpu" in install
    assert "cuda) index=https://pypi.org/simple" in install
    assert '--index-url "${index}"' in install


def test_dockerfile_variant_switch_runs_under_sh() -> None:
    (install,) = [run for run in instruction("RUN") if "torch==" in run]
    switch = install.split(" && pip install", 1)[0]
    for variant, expected in [
        ("cpu", "https://download.pytorch.org/whl/cpu"),
        ("cuda", "https://pypi.org/simple"),
        ("cu128", "https://download.pytorch.org/whl/cu128"),
    ]:
        script = f'TORCH_VARIANT={variant}; {switch} && echo "$index"'
        result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
        assert (result.returncode, result.stdout.strip()) == (0, expected), result.stderr
    bad = subprocess.run(
        ["sh", "-c", f"TORCH_VARIANT=rocm; {switch}"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and "TORCH_VARIANT must be cpu, cuda or cuXYZ" in bad.stderr


def test_dockerfile_runs_as_a_user_and_checks_readyz() -> None:
    users = instruction("USER")
    assert users and users[-1] not in {"root", "0", "0:0"}, users
    last_user = max(i for i, (kind, _) in enumerate(INSTRUCTIONS) if kind == "USER")
    assert all(kind != "RUN" for kind, _ in INSTRUCTIONS[last_user:]), "RUN after USER"
    (healthcheck,) = instruction("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--start-period=" in options
    assert exec_form(command) == [
        "python",
        "/opt/pixseek/docker/healthcheck.py",
        f"http://127.0.0.1:{SERVER_PORT}/readyz",
    ]


def test_dockerfile_entrypoint_command_volumes_and_port() -> None:
    (entrypoint,) = instruction("ENTRYPOINT")
    assert exec_form(entrypoint) == ["/bin/sh", "/opt/pixseek/docker/entrypoint.sh"]
    assert "docker /opt/pixseek/docker" in instruction("COPY")
    (cmd,) = instruction("CMD")
    assert exec_form(cmd) == ["pixseek", "serve", "--host", "0.0.0.0", "--port", str(SERVER_PORT)]
    assert instruction("EXPOSE") == [str(SERVER_PORT)]
    (volumes,) = instruction("VOLUME")
    assert exec_form(volumes) == ["/data", "/cache"]
    env = " ".join(instruction("ENV"))
    for setting in ("PIXSEEK_DATA_DIR=/data", "PIXSEEK_CACHE_DIR=/cache/", "HF_HOME=/cache/"):
        assert setting in env, setting


def test_dockerfile_copies_every_package_and_dockerignore_lets_only_those_in() -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {args.split()[0] for args in instruction("COPY")}
    copied |= set(instruction("COPY")[0].split()[:-1])  # `COPY pyproject.toml README.md ./`
    assert packages <= copied, f"packages not copied into the image: {packages - copied}"
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", "an allow-list: everything else (.env, .venv, data) stays out"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == copied, f".dockerignore lets in {allowed}, the Dockerfile copies {copied}"
    assert ".env" not in allowed


# --- docker/entrypoint.sh -------------------------------------------------------------------

FAKE_PIXSEEK = r"""#!/bin/sh
# A stand-in for pixseek: records its pid, arguments and PIXSEEK_* names, then behaves as told.
names=$(env | sed -n 's/^\(PIXSEEK_[A-Za-z0-9_]*\)=.*/\1/p' | sort | tr '\n' ' ')
printf '%s|%s|%s\n' "$$" "$*" "$names" >> "$FAKE_LOG"
if [ "$1 $2" = "db upgrade" ]; then
    failures=$(cat "$FAKE_LOG.failures" 2>/dev/null || echo "${FAKE_UPGRADE_FAILURES:-0}")
    if [ "$failures" -gt 0 ]; then
        echo $((failures - 1)) > "$FAKE_LOG.failures"
        echo "fake upgrade failed" >&2
        exit 3
    fi
    exit 0
fi
if [ -n "${FAKE_WAIT_FOR_TERM:-}" ]; then
    trap 'echo "got TERM" >> "$FAKE_LOG"; exit 0' TERM
    echo "waiting" >> "$FAKE_LOG"
    while :; do sleep 0.05; done
fi
exit "${FAKE_EXIT:-0}"
"""


@dataclass
class Call:
    pid: int
    args: str
    pixseek_variables: list[str]


@dataclass
class Ran:
    """One finished run of the entrypoint."""

    pid: int
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Container:
    """Runs docker/entrypoint.sh as the image does, with the fake pixseek first on PATH."""

    bin_dir: Path
    log: Path

    def env(self, **variables: str) -> dict[str, str]:
        path = f"{self.bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin"
        return {"PATH": path, "FAKE_LOG": str(self.log), "LC_ALL": "C.UTF-8", **variables}

    def start(self, *command: str, **variables: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["/bin/sh", str(ENTRYPOINT), *command],
            env=self.env(**variables),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *command: str, **variables: str) -> Ran:
        process = self.start(*command, **variables)
        stdout, stderr = process.communicate(timeout=60)
        return Ran(process.pid, process.returncode, stdout, stderr)

    def calls(self) -> list[Call]:
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            if line.count("|") == 2:
                pid, args, names = line.split("|")
                found.append(Call(int(pid), args, names.split()))
        return found

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not (self.log.exists() and text in self.log.read_text()):
            assert time.monotonic() < deadline, f"{text!r} not in the log within {timeout} s"
            time.sleep(0.02)


@pytest.fixture
def container(tmp_path: Path) -> Container:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pixseek"
    fake.write_text(FAKE_PIXSEEK)
    fake.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    return Container(bin_dir, tmp_path / "calls.log")


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port on loopback that accepts connections (as a database that is up would)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (as a database that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pg_url(port: int) -> str:
    return f"postgresql+psycopg://pixseek:s3cret-pw@127.0.0.1:{port}/pixseek"


SERVE = ("pixseek", "serve", "--host", "0.0.0.0", "--port", "8000")


def test_entrypoint_is_posix_sh_that_stops_on_errors() -> None:
    lines = ENTRYPOINT.read_text().splitlines()
    assert lines[0] == "#!/bin/sh"
    assert "set -eu" in lines
    for shell in ("sh", "dash", "bash"):
        if subprocess.run(["which", shell], capture_output=True, check=False).returncode == 0:
            checked = subprocess.run(
                [shell, "-n", str(ENTRYPOINT)], capture_output=True, text=True, check=False
            )
            assert checked.returncode == 0, (shell, checked.stderr)


def test_entrypoint_upgrades_the_schema_then_execs_the_command(
    container: Container, listening_port: int
) -> None:
    result = container.run(*SERVE, PIXSEEK_DATABASE_URL=pg_url(listening_port))
    assert result.returncode == 0, result.stderr
    upgrade, serve = container.calls()
    assert (upgrade.args, serve.args) == ("db upgrade", "serve --host 0.0.0.0 --port 8000")
    # exec: the command took over the entrypoint's process (pid), so it gets docker's signals
    assert serve.pid == result.pid and upgrade.pid != serve.pid


def test_entrypoint_passes_on_the_commands_exit_status(container: Container) -> None:
    result = container.run(*SERVE, FAKE_EXIT="7")
    assert result.returncode == 7, result.stderr
    assert [c.args for c in container.calls()] == ["db upgrade", "serve --host 0.0.0.0 --port 8000"]


def test_entrypoint_waits_for_a_database_that_comes_up_late(container: Container) -> None:
    port = closed_port()
    server = socket.socket()

    def come_up() -> None:
        time.sleep(1.5)
        server.bind(("127.0.0.1", port))
        server.listen(8)

    late = threading.Thread(target=come_up)
    started = time.monotonic()
    late.start()
    try:
        result = container.run(*SERVE, PIXSEEK_DATABASE_URL=pg_url(port), DB_WAIT_TIMEOUT="30")
    finally:
        late.join()
        server.close()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.5
    assert f"waiting for the database at 127.0.0.1:{port}" in result.stderr
    assert [c.args for c in container.calls()] == ["db upgrade", "serve --host 0.0.0.0 --port 8000"]


def test_entrypoint_gives_up_on_an_unreachable_database(container: Container) -> None:
    port = closed_port()
    result = container.run(*SERVE, PIXSEEK_DATABASE_URL=pg_url(port), DB_WAIT_TIMEOUT="1")
    assert result.returncode == 1
    assert container.calls() == [], "neither the upgrade nor the command may run"
    message = result.stderr
    assert f"the database at 127.0.0.1:{port} did not accept connections within 1 s" in message
    assert "PIXSEEK_DATABASE_URL" in message and "DB_WAIT_TIMEOUT" in message
    assert "s3cret-pw" not in message


def test_entrypoint_refuses_a_bad_wait_timeout(container: Container, listening_port: int) -> None:
    result = container.run(
        *SERVE, PIXSEEK_DATABASE_URL=pg_url(listening_port), DB_WAIT_TIMEOUT="soon"
    )
    assert result.returncode == 2 and "DB_WAIT_TIMEOUT='soon'" in result.stderr
    assert container.calls() == []


def test_entrypoint_does_not_wait_for_sqlite(container: Container, tmp_path: Path) -> None:
    for url in ("", f"sqlite:///{tmp_path}/catalog.db"):
        container.log.unlink(missing_ok=True)
        result = container.run(*SERVE, PIXSEEK_DATABASE_URL=url, DB_WAIT_TIMEOUT="0")
        assert result.returncode == 0, result.stderr
        assert [c.args for c in container.calls()] == [
            "db upgrade",
            "serve --host 0.0.0.0 --port 8000",
        ]


def test_entrypoint_stops_when_the_upgrade_keeps_failing(container: Container) -> None:
    result = container.run(*SERVE, FAKE_UPGRADE_FAILURES="99", DB_UPGRADE_ATTEMPTS="2")
    assert result.returncode == 3, "the upgrade's own exit status"
    assert [c.args for c in container.calls()] == ["db upgrade", "db upgrade"]
    assert result.stderr.count("fake upgrade failed") == 2
    assert "'pixseek db upgrade' failed 2 time(s) (exit status 3)" in result.stderr
    assert "did not start" in result.stderr


def test_entrypoint_retries_an_upgrade_that_failed_once(container: Container) -> None:
    result = container.run(*SERVE, FAKE_UPGRADE_FAILURES="1")
    assert result.returncode == 0, result.stderr
    assert [c.args for c in container.calls()] == [
        "db upgrade",
        "db upgrade",
        "serve --host 0.0.0.0 --port 8000",
    ]
    assert "trying again in 2 s (1 of 3)" in result.stderr


def test_entrypoint_can_skip_the_upgrade(container: Container) -> None:
    result = container.run(*SERVE, DB_UPGRADE_ON_START="0")
    assert result.returncode == 0, result.stderr
    assert [c.args for c in container.calls()] == ["serve --host 0.0.0.0 --port 8000"]


def test_entrypoint_unsets_empty_pixseek_variables(container: Container) -> None:
    result = container.run(
        *SERVE,
        PIXSEEK_ADMIN_TOKEN="t0ken",
        PIXSEEK_READ_TOKEN="",
        PIXSEEK_MODEL="",
        OTHER_EMPTY="",
    )
    assert result.returncode == 0, result.stderr
    for call in container.calls():
        assert call.pixseek_variables == ["PIXSEEK_ADMIN_TOKEN"], call


def test_entrypoint_runs_other_commands_at_once(container: Container, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    started = time.monotonic()
    result = container.run(
        "sh",
        "-c",
        f"echo $$ > {shlex.quote(str(marker))}",
        PIXSEEK_DATABASE_URL=pg_url(closed_port()),
        DB_WAIT_TIMEOUT="30",
    )
    assert result.returncode == 0, result.stderr
    assert marker.exists() and container.calls() == []
    assert time.monotonic() - started < 10, "it must not wait for the database"


def test_entrypoint_without_a_command_says_what_to_run(container: Container) -> None:
    result = container.run()
    assert result.returncode == 64
    assert "no command given; e.g. pixseek serve" in result.stderr


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.02)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_entrypoint_stops_at_once_on_a_signal_while_waiting(
    container: Container, signum: int, status: int
) -> None:
    process = container.start(
        *SERVE, PIXSEEK_DATABASE_URL=pg_url(closed_port()), DB_WAIT_TIMEOUT="120"
    )
    children: list[int] = []

    def waiting() -> bool:  # one look at /proc: a child seen once may be gone at a second look
        children[:] = children_of(process.pid)
        return len(children) == 1

    try:
        wait_until(waiting, "the database wait to start")
        (waiter,) = children
        time.sleep(0.3)
        sent = time.monotonic()
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=15)  # and close its pipes, whatever failed above
    assert process.returncode == status, stderr
    assert time.monotonic() - sent < 5, "it waited for the timeout instead of stopping"
    assert f"stopped by SIG{signal.Signals(signum).name[3:]}" in stderr
    wait_until(lambda: not is_running(waiter), "the database wait to be ended too", timeout=5)
    assert container.calls() == []


def test_entrypoint_hands_docker_stops_sigterm_to_the_command(container: Container) -> None:
    process = container.start(*SERVE, FAKE_WAIT_FOR_TERM="1")
    try:
        container.wait_for_log("waiting")
        serve = container.calls()[-1]
        assert serve.pid == process.pid, "the command replaced the entrypoint (exec)"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "got TERM" in container.log.read_text()


# --- the entrypoint with the real pixseek ---------------------------------------------------


def real_pixseek_env(**variables: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("PIXSEEK_")}
    path = f"{Path(sys.executable).parent}:{keep.get('PATH', '/usr/bin:/bin')}"
    return {**keep, "PATH": path, **variables}


def test_entrypoint_brings_a_new_catalog_to_the_newest_schema(
    database_url: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), "pixseek", "db", "current"],
        env=real_pixseek_env(
            PIXSEEK_DATA_DIR=str(tmp_path / "data"), PIXSEEK_DATABASE_URL=database_url
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert SCHEMA_REVISION in result.stdout, result.stdout


@pytest.mark.postgres
def test_two_containers_starting_together_both_upgrade_one_database(
    postgres_server: str,
) -> None:
    from tests.conftest import create_postgres_database, drop_postgres_database

    url = create_postgres_database(postgres_server)
    try:
        env = real_pixseek_env(PIXSEEK_DATABASE_URL=url)
        command = ["/bin/sh", str(ENTRYPOINT), "pixseek", "db", "current"]
        processes = [
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        drop_postgres_database(postgres_server, url)
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert SCHEMA_REVISION in stdout, stdout


# --- docker/wait_for_database.py and docker/healthcheck.py ----------------------------------


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docker_{name}", DOCKER / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("", None),
        ("sqlite:////data/catalog.db", None),
        ("postgresql+psycopg://pixseek:pw@db/pixseek", ("db", 5432)),
        ("postgresql://u@10.1.2.3:6543/x", ("10.1.2.3", 6543)),
        ("postgresql+psycopg:///pixseek?host=/var/run/postgresql", None),
        ("mysql+pymysql://u:p@mariadb/x", ("mariadb", 3306)),
    ],
)
def test_database_address_from_the_url(url: str, address: tuple[str, int] | None) -> None:
    assert load_script("wait_for_database").database_address(url) == address


def test_database_address_needs_a_port_for_an_unknown_database() -> None:
    with pytest.raises(ValueError, match="no port given"):
        load_script("wait_for_database").database_address("oracle://u@host/x")


class _Readyz(BaseHTTPRequestHandler):
    status = 200
    body = b'{"status": "ready"}'
    seen_authorization: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen_authorization.append(self.headers.get("Authorization"))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def readyz() -> Iterator[tuple[str, type[_Readyz]]]:
    handler = type("Handler", (_Readyz,), {"seen_authorization": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/readyz", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def healthcheck(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DOCKER / "healthcheck.py"), url],
        env={"PATH": "/usr/bin:/bin", "http_proxy": "http://127.0.0.1:9", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_healthcheck_passes_on_200_and_sends_the_read_token(
    readyz: tuple[str, type[_Readyz]],
) -> None:
    url, handler = readyz
    assert healthcheck(url).returncode == 0
    result = healthcheck(url, PIXSEEK_READ_TOKEN="reader")
    assert result.returncode == 0 and '"ready"' in result.stdout
    assert handler.seen_authorization == [None, "Bearer reader"]


def test_healthcheck_fails_with_the_reason_on_503(readyz: tuple[str, type[_Readyz]]) -> None:
    url, handler = readyz
    handler.status = 503
    handler.body = b'{"status": "warming", "reason": "the models are loading"}'
    result = healthcheck(url)
    assert result.returncode == 1
    assert result.stdout.startswith("503 ") and "the models are loading" in result.stdout


def test_healthcheck_fails_when_nothing_answers() -> None:
    url = f"http://127.0.0.1:{closed_port()}/readyz"
    result = healthcheck(url)
    assert result.returncode == 1 and f"{url} did not answer" in result.stdout
