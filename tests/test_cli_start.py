"""The command line starts fast and reads well.

Fast: `pixseek --help` and the commands that only read the catalog (`stats`, `jobs`,
`failures`, `db current`) never import the model stack (torch, torchvision, transformers,
open_clip), which takes seconds; `--help` not even the catalog or the settings; `search` only
once it has a query to encode. Each command runs
in a fresh interpreter under `python -X importtime`, which names every module it imports
(`benchmarks/cli_start.py` times them).

Readable: every command's help is sentences, with no placeholder left where Rich markup ate a
"[env: X]" (" .") and no `<bool>` after a flag; an option that stands for a setting names its
environment variable and says its default.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from search.catalog.migrate import SCHEMA_REVISION, head_revision
from tests.conftest import Cli
from web.cli import app

REPO = Path(__file__).resolve().parents[1]
MODEL_STACK = {"torch", "torchvision", "transformers", "open_clip"}
CATALOG_STACK = {"sqlalchemy", "alembic", "pydantic_settings", "numpy", "faiss"}
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$")


def imported_modules(args: list[str], data_dir: Path, status: int = 0) -> set[str]:
    """The top-level packages `python -m web.cli ARGS` imports (from the repository, like
    `make` runs it), after checking that it exited with `status`."""
    env = {**os.environ, "PIXSEEK_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    env.pop("PIXSEEK_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "web.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == status, f"pixseek {' '.join(args)}: {done.stdout}{done.stderr}"
    return {
        match.group(1).split(".")[0]
        for line in done.stderr.splitlines()
        if (match := IMPORT_LINE.match(line))
    }


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["stats", "--json"], 0),
        (["jobs"], 0),
        (["jobs", "--json"], 0),
        (["failures"], 0),
        (["db", "current"], 0),
        (["stats", "--help"], 0),
        (["search", "--help"], 0),
        (["search", "a red car"], 1),  # "Nothing is indexed yet": no query to encode
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else f"exit {value}",
)
def test_catalog_commands_never_import_the_model_stack(
    args: list[str], status: int, tmp_path: Path
) -> None:
    loaded = imported_modules(args, tmp_path / "data", status)
    assert not loaded & MODEL_STACK, f"pixseek {' '.join(args)} imported {loaded & MODEL_STACK}"


def test_help_imports_neither_models_nor_catalog(tmp_path: Path) -> None:
    loaded = imported_modules(["--help"], tmp_path / "data")
    assert "web" in loaded  # the measurement sees pixseek's own imports
    assert not loaded & (MODEL_STACK | CATALOG_STACK), loaded & (MODEL_STACK | CATALOG_STACK)


def test_the_expected_schema_revision_is_alembics_head() -> None:
    """Opening a catalog compares it with `SCHEMA_REVISION` instead of loading Alembic: a new
    revision file must bump it."""
    assert head_revision() == SCHEMA_REVISION


def _commands(group: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of the click tree (`()` is `pixseek` itself)."""
    yield path
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, (*path, name))


COMMANDS = list(_commands(get_command(app)))


def _command(path: tuple[str, ...]) -> object:
    command: object = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "pixseek")
def test_help_reads_as_sentences(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert not re.search(r" \.(\s|$)", text), text  # "Data directory ." once
    assert "<bool>" not in text, text
    for param in _command(path).params:  # type: ignore[attr-defined]
        help_text = " ".join((getattr(param, "help", None) or "").split())
        if not help_text or param.name == "help":
            continue
        assert help_text.endswith("."), f"{param.name}: {help_text!r} is not a sentence"
        if "PIXSEEK_" in help_text:  # it stands for a setting: say what it is when not given
            assert "default" in help_text, f"{param.name}: {help_text!r} hides its default"


def test_search_says_what_is_missing(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"PIXSEEK_DATA_DIR": str(tmp_path / "data")}
    neither = runner.invoke(app, ["search"], env=env)
    assert neither.exit_code == 2
    assert "neither a QUERY nor --image PATH was given" in " ".join(neither.output.split())
    server_and_local = runner.invoke(
        app, ["search", "red", "--server", "http://127.0.0.1:1", "--local"], env=env
    )
    assert server_and_local.exit_code == 2
    assert "--server and --local were both given" in " ".join(server_and_local.output.split())


def test_db_current_names_the_revision(tmp_path: Path) -> None:
    """Before the first command there is no catalog (and `db current` makes none); after one,
    the SQLite default is at the revision this pixseek uses."""
    data_dir = tmp_path / "data"
    runner = CliRunner()
    env = {"PIXSEEK_DATA_DIR": str(data_dir)}
    before = runner.invoke(app, ["db", "current", "--json"], env=env)
    assert before.exit_code == 0, before.output
    assert before.stdout.strip() == f'{{"current": null, "head": "{SCHEMA_REVISION}"}}'
    assert not (data_dir / "catalog.db").exists()
    assert runner.invoke(app, ["stats"], env=env).exit_code == 0
    after = runner.invoke(app, ["db", "current"], env=env)
    assert f"revision {SCHEMA_REVISION} (up to date)" in after.stdout


def test_db_current_on_both_catalogs(cli: Cli) -> None:
    cli("stats")  # opens the catalog: the SQLite one upgrades itself, PostgreSQL's was upgraded
    assert cli.json("db", "current") == {"current": SCHEMA_REVISION, "head": SCHEMA_REVISION}
