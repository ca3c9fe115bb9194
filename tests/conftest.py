"""Shared fixtures: a clean environment per test, catalogs on SQLite and PostgreSQL, a folder
of synthetic photos, settings pointing at a temporary data directory, and a CLI runner."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub, which reads these once: tests never use the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from search.settings import Settings
from tests.photos import PhotoSet, make_photo_set

pytest_plugins = ["tests.world_fixtures"]

PG_TEST_URL = os.environ.get(
    "PIXSEEK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PIXSEEK_* setting leaks in from the developer's shell; nothing touches the network."""
    for name in list(os.environ):
        if (
            name.startswith("PIXSEEK_")
            and name != "PIXSEEK_TEST_POSTGRES_URL"
            and name != "PIXSEEK_TEST_CACHE"
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("PIXSEEK_CACHE_DIR", str(tmp_path / "user-cache"))  # never the real ~/.cache


def _postgres_available() -> str | None:
    import psycopg

    url = make_url(PG_TEST_URL).set(drivername="postgresql")
    try:
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001
        return str(exc)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL test server URL; skips locally when absent, fails in CI (CI=true)."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_TEST_URL} is required in CI: {problem}")
        pytest.skip(f"PostgreSQL at {PG_TEST_URL} not reachable: {problem}")
    return PG_TEST_URL


def create_postgres_database(server_url: str) -> str:
    """A fresh, empty database on the test server; returns its URL."""
    import psycopg

    name = f"pixseek_t_{uuid.uuid4().hex[:12]}"
    admin = make_url(server_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, url: str) -> None:
    import psycopg

    name = make_url(url).database
    admin = make_url(server_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A catalog URL per test: a SQLite file, or a fresh PostgreSQL database (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    url = create_postgres_database(server)
    try:
        yield url
    finally:
        from search.models.registry import clear_model_cache  # noqa: F401  (keeps models cached)

        drop_postgres_database(server, url)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=data_dir, database_url=database_url, model="tiny-test", workers=0, device="cpu"
    )


@pytest.fixture(scope="session")
def photo_set(tmp_path_factory: pytest.TempPathFactory) -> PhotoSet:
    """A read-only folder of synthetic photos plus one corrupt and one non-image file."""
    return make_photo_set(tmp_path_factory.mktemp("photos"))


@pytest.fixture
def photos(tmp_path: Path) -> PhotoSet:
    """A private, writable copy of the photo set (for tests that change files)."""
    return make_photo_set(tmp_path / "photos")


class Cli:
    """Runs `pixseek` in-process with settings passed as environment, like a user's shell."""

    def __init__(self, settings: Settings) -> None:
        self.env = {
            "PIXSEEK_DATA_DIR": str(settings.data_dir),
            "PIXSEEK_MODEL": settings.model,
            "PIXSEEK_DEVICE": settings.device,
            "PIXSEEK_WORKERS": str(settings.workers if settings.workers is not None else 0),
        }
        if settings.database_url:
            self.env["PIXSEEK_DATABASE_URL"] = settings.database_url
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int = 0) -> Any:
        from web.cli import app

        result = self.runner.invoke(app, list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == expect, (
            f"pixseek {' '.join(args)} exited {result.exit_code} (expected {expect}):\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(settings: Settings) -> Cli:
    if not settings.resolved_database_url().startswith("sqlite"):
        Cli(settings)("db", "upgrade")
    return Cli(settings)
