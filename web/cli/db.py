"""`pixseek check` (catalog, vector store and FAISS index agree?) and `pixseek db current`,
`pixseek db upgrade` (the catalog's schema)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from web.cli.common import open_catalog_for, print_json, reports_errors, settings_from, stdout

if TYPE_CHECKING:
    from search.storage.integrity import Finding, IntegrityReport

__all__ = ["check", "db_current", "db_upgrade"]


@reports_errors
def check(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Data directory to check (default: the global --data-dir, else "
            "PIXSEEK_DATA_DIR, else the user data folder).",
            show_default=False,
        ),
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option(help="Check only this collection (default: all).", show_default=False),
    ] = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Fix what can be fixed: rebuild the FAISS index, remove temp files, "
            "take over stale locks, re-queue lost vectors.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check that catalog, vector store and FAISS index agree.

    Exits with status 1 while problems remain.
    """
    from search.storage.integrity import check_data_dir, require_catalog_exists

    settings = settings_from(ctx, data_dir=data_dir)
    require_catalog_exists(settings)
    catalog = open_catalog_for(settings)
    try:
        report = check_data_dir(settings, catalog, collection=collection, repair=repair)
    finally:
        catalog.close()
    if as_json:
        print_json(report.as_json())
    else:
        _print_check(report, repair)
    if not report.ok:
        raise typer.Exit(1)


def _print_check(report: IntegrityReport, repair: bool) -> None:
    table = Table(show_header=True, header_style="bold", title=report.data_dir)
    for column in ("collection", "images", "embedded", "failed", "pending", "vectors", "index"):
        table.add_column(column)
    for c in report.collections:
        table.add_row(
            c.name,
            str(c.images),
            str(c.embedded),
            str(c.failed),
            str(c.pending),
            str(c.vectors),
            str(c.index_vectors),
        )
    stdout.print(table)
    for c in report.collections:
        for finding in c.findings:
            _print_finding(finding, c.name)
    for finding in report.findings:
        _print_finding(finding, None)
    if report.ok:
        stdout.print("[green]OK:[/] catalog, vectors and index agree.")
    else:
        advice = "." if repair else "; pixseek check --repair fixes what it can."
        stdout.print("[red]Problems remain[/]" + advice)


def _print_finding(finding: Finding, collection: str | None) -> None:
    mark = (
        "[green]repaired[/]"
        if finding.repaired
        else "[red]problem[/]"
        if finding.problem
        else "[dim]note[/]"
    )
    where = f"{collection}: " if collection else ""
    stdout.print(f"{mark} {where}{finding.message}", highlight=False, soft_wrap=True)


@reports_errors
def db_current(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"current": ..., "head": ...} as JSON.')
    ] = False,
) -> None:
    """Show the catalog's schema revision.

    And whether `pixseek db upgrade` has work to do.
    """
    from search.catalog import SCHEMA_REVISION, catalog_revision

    settings = settings_from(ctx)
    current = catalog_revision(settings.resolved_database_url())
    if as_json:
        print_json({"current": current, "head": SCHEMA_REVISION})
    elif current == SCHEMA_REVISION:
        stdout.print(f"Catalog schema revision {current} (up to date).", highlight=False)
    else:
        shown = current or "none (no catalog yet)"
        stdout.print(
            f"Catalog schema revision {shown}; this pixseek uses {SCHEMA_REVISION}. "
            "pixseek db upgrade brings it there (the SQLite default does so on first use).",
            highlight=False,
            soft_wrap=True,
        )


@reports_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the catalog schema to the newest revision.

    Safe to run any time: an up-to-date catalog is left as it is.
    """
    from search.catalog import open_catalog

    settings = settings_from(ctx)
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    catalog.close()
    stdout.print("Catalog schema is up to date.")
