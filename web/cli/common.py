"""What every command shares: the consoles, the global options, `Settings` from flags and
environment, the catalog, JSON output, and the one place `PixseekError` becomes a message.

Heavy modules (the engine, the indexer, torch) are imported inside the commands that need them,
so `pixseek --help` and a mistyped flag answer at once."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from search.errors import PixseekError
from search.settings import Settings

if TYPE_CHECKING:
    from search.catalog import Catalog

__all__ = [
    "global_options",
    "open_catalog_for",
    "print_json",
    "reports_errors",
    "settings_from",
    "stderr",
    "stdout",
]

stdout = Console()
stderr = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn `PixseekError` into a one-line message on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PixseekError as exc:
            stderr.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            stderr.print("[yellow]Interrupted.[/] Run the same command again to resume.")
            raise typer.Exit(130) from None

    return wrapper


def global_options(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory [env: PIXSEEK_DATA_DIR].")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Catalog database URL [env: PIXSEEK_DATABASE_URL]; default SQLite."),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda or cuda:N [env: PIXSEEK_DEVICE].")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show library log messages.")
    ] = False,
) -> None:
    """Options before the command (`pixseek --data-dir D search ...`): logging now, the
    setting overrides kept in `ctx.obj` for `settings_from`."""
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, stream=sys.stderr)
    if not verbose:  # a writer lock taken over from a dead process is said, not hidden
        logging.getLogger("search.storage.collection_store").setLevel(logging.WARNING)
        # psycopg sets its own logger to WARNING; its notes on a dropped connection would come
        # on top of the one sentence that says what happened and what to do (-v shows them)
        logging.getLogger("psycopg").setLevel(logging.ERROR)
    overrides = {"data_dir": data_dir, "database_url": database_url, "device": device}
    ctx.obj = {key: value for key, value in overrides.items() if value is not None}


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """`Settings` from the environment, the global options and this command's `overrides`
    (a `None` override leaves the setting alone)."""
    values = dict(ctx.obj or {})
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings(**values)
    except Exception as exc:  # pydantic ValidationError: name the setting and the bad value
        raise typer.BadParameter(str(exc)) from exc


def open_catalog_for(settings: Settings) -> Catalog:
    """The catalog; the embedded SQLite one upgrades itself, others need `pixseek db upgrade`."""
    from search.catalog import open_catalog

    url = settings.resolved_database_url()
    return open_catalog(url, upgrade=url.startswith("sqlite"))


def print_json(data: Any) -> None:
    """One line of JSON on stdout (not through Rich, which would wrap and colour it)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
