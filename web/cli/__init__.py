"""The `pixseek` command line (console script `web.cli:main`). Each command parses its flags,
builds `Settings` (and, to search, a `SearchRequest`), calls one function in `indexer` or
`search`, and prints the result (a Rich table, or JSON with --json). Errors meant for users
(`PixseekError`) are caught once (`common.reports_errors`) and printed as one sentence.

One module per command group; this one only assembles them, in the order `--help` lists them.
Help is click's plain text, not Rich's panels: Rich would read "[env: X]" in a help text as
markup and drop it, and label every flag `<bool>`.
"""

from __future__ import annotations

import typer

from web.cli import captions, collections, common, db, failures, index, quality, search, serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="pixseek",
    help="Index folders of photos with CLIP and search them by text or by example image.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(
    help="Manage the catalog database schema.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")

app.callback()(common.global_options)
app.command()(index.index)
app.command()(search.search)
app.command()(captions.caption)
app.command()(captions.ask)
app.command()(collections.stats)
app.command()(failures.failures)
app.command()(collections.dupes)
# their docstrings' first sentences are longer than the command list shows (click cuts them)
app.command("eval", short_help="Measure Recall@K through pixseek's own index and search.")(
    quality.evaluate
)
app.command(short_help="Offline demo on a synthetic world, with a tiny CLIP.")(quality.demo)
app.command()(index.jobs)
app.command()(serve.serve)
app.command()(db.check)
db_app.command("current")(db.db_current)
db_app.command("upgrade")(db.db_upgrade)


def main() -> None:
    """The console script: run the command named on the command line."""
    app(prog_name="pixseek")
