"""`pixseek failures`: the files the indexer could not embed, and why.

`pixseek index` counts failures by kind of reason; this names the files, for every run so far
(a failed file stays failed until it changes), so a person can fix or remove them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from web.cli.common import open_catalog_for, print_json, reports_errors, settings_from, stdout

if TYPE_CHECKING:
    from search.catalog import FailedFile

__all__ = ["failures"]


@reports_errors
def failures(
    ctx: typer.Context,
    collection: Annotated[
        str | None,
        typer.Option(help="Only this collection (default: all).", show_default=False),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(
            help="Only failures whose reason contains this text, in any case, e.g. 'not an "
            "image' (default: every reason).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"failed_files": [{"path", "reason", "collection"}, ...]}.'
        ),
    ] = False,
) -> None:
    """List the files that failed to index, with the reason for each."""
    catalog = open_catalog_for(settings_from(ctx))
    try:
        collection_id = catalog.require_collection(collection).id if collection else None
        listed = catalog.failed_files(collection_id, reason=reason)
    finally:
        catalog.close()
    if as_json:
        print_json({"failed_files": [failed.as_json() for failed in listed]})
    elif not listed:
        stdout.print(_nothing_failed(collection, reason), highlight=False)
    else:
        _print_failures(listed)


def _nothing_failed(collection: str | None, reason: str | None) -> str:
    """The sentence for an empty list, naming the filters that emptied it."""
    where = f" in collection {collection!r}" if collection else ""
    matching = f" with a reason containing {reason!r}" if reason else ""
    return f"No failed files{where}{matching}."


def _print_failures(listed: list[FailedFile]) -> None:
    several = len({failed.collection for failed in listed}) > 1
    title = f"{len(listed)} failed file{'' if len(listed) == 1 else 's'}"
    table = Table(show_header=True, header_style="bold", title=title)
    if several:
        table.add_column("collection")
    table.add_column("path", overflow="fold")
    table.add_column("reason", overflow="fold")
    for failed in listed:
        table.add_row(*([failed.collection] if several else []), failed.path, failed.reason)
    stdout.print(table)
