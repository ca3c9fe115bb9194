"""`pixseek stats` (counts per collection) and `pixseek dupes` (near-identical images)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from web.cli.common import open_catalog_for, print_json, reports_errors, settings_from, stdout

__all__ = ["dupes", "stats"]


@reports_errors
def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Count the images and vectors of each collection.

    Also shows each collection's encoder, and how many images failed or wait to be embedded.
    """
    from search.query.engine import SearchEngine

    settings = settings_from(ctx)
    catalog = open_catalog_for(settings)
    try:
        result = SearchEngine(settings, catalog).stats()
    finally:
        catalog.close()
    if as_json:
        print_json(result.model_dump())
        return
    table = Table(show_header=True, header_style="bold", title=str(settings.data_dir))
    for column in ("collection", "images", "embedded", "failed", "pending", "vectors", "model"):
        table.add_column(column)
    for c in result.collections:
        table.add_row(
            c.name,
            str(c.images),
            str(c.embedded),
            str(c.failed),
            str(c.pending),
            str(c.index_vectors),
            c.model_id,
        )
    stdout.print(table)


@reports_errors
def dupes(
    ctx: typer.Context,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Cosine similarity at or above which images count as near-duplicates "
            "(default: 0.95).",
            show_default=False,
        ),
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option(help="Only this collection (default: all).", show_default=False),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"groups": [...]} as JSON.')
    ] = False,
) -> None:
    """List groups of near-identical images.

    Found with the FAISS index: images whose vectors are at least --threshold alike.
    """
    from search.query.duplicates import DEFAULT_DUPLICATE_THRESHOLD  # imports faiss: not at start
    from search.query.engine import SearchEngine

    settings = settings_from(ctx)
    catalog = open_catalog_for(settings)
    try:
        result = SearchEngine(settings, catalog).duplicates(
            threshold=DEFAULT_DUPLICATE_THRESHOLD if threshold is None else threshold,
            collection=collection,
        )
    finally:
        catalog.close()
    if as_json:
        print_json(result.model_dump())
        return
    if not result.groups:
        stdout.print(f"No near-duplicates at similarity >= {result.threshold}.")
    for number, group in enumerate(result.groups, 1):
        stdout.print(
            f"[bold]Group {number}[/] ({len(group.ids)} images, similarity >= "
            f"{group.similarity:.3f}, collection {group.collection})",
            highlight=False,
        )
        for path in group.paths:
            stdout.print(f"  {path}", highlight=False, soft_wrap=True)
