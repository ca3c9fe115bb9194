"""What every command shares: the consoles, the global options, `Settings` from flags and
environment, the catalog, JSON output, and the one place `PixseekError` becomes a message.

Heavy modules (the engine, the indexer, torch, even pydantic-settings) are imported inside the
commands that need them, so `pixseek --help` and a mistyped flag answer at once;
tests/test_cli_start.py holds every command module to that."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from search.errors import PixseekError

if TYPE_CHECKING:
    from search.catalog import Catalog
    from search.settings import Settings

__all__ = [
    "configure_logging",
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


_OWN_PACKAGES = frozenset({"search", "indexer", "web"})
# Libraries that give their logger a handler and a level of their own when imported (so the
# root handler's filter never sees their records), and the variable that sets that level.
_OWN_HANDLER_LIBRARIES = {
    "huggingface_hub": "HF_HUB_VERBOSITY",
    "transformers": "TRANSFORMERS_VERBOSITY",
}


class _PixseekRecordsOnly(logging.Filter):
    """Lets through the records of pixseek's own loggers only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.partition(".")[0] in _OWN_PACKAGES


def configure_logging(verbose: bool) -> None:
    """Without -v, pixseek's own errors (and a writer lock taken over from a dead process) and
    nothing from the libraries: huggingface_hub's retry warnings, open_clip's errors on the root
    logger, psycopg's notes on a dropped connection and transformers' advice would come on top
    of the one sentence that says what happened and what to do. -v shows them all, from INFO."""
    handler = logging.StreamHandler(sys.stderr)
    if verbose:
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        return
    handler.addFilter(_PixseekRecordsOnly())
    logging.basicConfig(level=logging.ERROR, handlers=[handler])
    logging.getLogger("search.storage.collection_store").setLevel(logging.WARNING)
    for library, variable in _OWN_HANDLER_LIBRARIES.items():
        os.environ.setdefault(variable, "error")  # read when the library is imported
        logging.getLogger(library).setLevel(logging.ERROR)  # when it already is


def global_options(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the catalog, vectors, indexes and thumbnails live (default: the user data "
            "folder, ~/.local/share/pixseek on Linux; env PIXSEEK_DATA_DIR).",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Catalog database URL, e.g. postgresql+psycopg://user@host/db (default: a SQLite "
            "file in the data directory; env PIXSEEK_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Where the models run: auto, cpu, cuda or cuda:N (default: auto, which is CUDA "
            "when torch sees it; env PIXSEEK_DEVICE).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Also show the log messages of the libraries pixseek uses."
        ),
    ] = False,
) -> None:
    """Options before the command (`pixseek --data-dir D search ...`): logging now, the
    setting overrides kept in `ctx.obj` for `settings_from`."""
    configure_logging(verbose)
    overrides = {"data_dir": data_dir, "database_url": database_url, "device": device}
    ctx.obj = {key: value for key, value in overrides.items() if value is not None}


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """`Settings` from the environment, the global options and this command's `overrides`
    (a `None` override leaves the setting alone)."""
    from search.settings import Settings

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
