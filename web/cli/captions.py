"""`pixseek caption` (write captions for images that have none) and `pixseek ask` (a question
about one image): the commands that run the captioning/VQA model."""

from __future__ import annotations

from typing import Annotated

import typer

from web.cli.common import open_catalog_for, print_json, reports_errors, settings_from, stdout

__all__ = ["ask", "caption"]


@reports_errors
def caption(
    ctx: typer.Context,
    collection: Annotated[
        str | None,
        typer.Option(help="Only this collection (default: all).", show_default=False),
    ] = None,
    captioner: Annotated[
        str | None,
        typer.Option(
            help="Captioner SPEC: a preset, a repo id or local-dir:PATH (default: the 'default' "
            "preset; env PIXSEEK_CAPTIONER).",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per generation batch.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Write captions for indexed images that have none (resumable)."""
    from web.cli.progress import run_captioning

    settings = settings_from(ctx, captioner=captioner)
    catalog = open_catalog_for(settings)
    try:
        report = run_captioning(settings, catalog, collection, batch_size, transient=as_json)
    finally:
        catalog.close()
    if as_json:
        print_json(report.as_json())
        return
    unreadable = f" ({report.unreadable} unreadable)" if report.unreadable else ""
    stdout.print(
        f"Captioned {report.captioned} images with {report.model_id} in "
        f"{report.seconds:.1f} s{unreadable}",
        highlight=False,
    )


@reports_errors
def ask(
    ctx: typer.Context,
    image_id: Annotated[
        int,
        typer.Argument(
            help="Catalog id of the image (search results show it).", metavar="IMAGE_ID"
        ),
    ],
    question: Annotated[
        str,
        typer.Argument(help="The question, e.g. 'what colour is the car?'.", metavar="QUESTION"),
    ],
    captioner: Annotated[
        str | None,
        typer.Option(
            help="Captioner/VQA SPEC (default: the 'default' preset; env PIXSEEK_CAPTIONER).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"answer": ...} as JSON.')] = False,
) -> None:
    """Ask a question about one image and print the answer.

    The captioner answers (BLIP-2 is prompted with "Question: QUESTION Answer:").
    """
    from search.query.engine import SearchEngine

    settings = settings_from(ctx, captioner=captioner)
    catalog = open_catalog_for(settings)
    try:
        result = SearchEngine(settings, catalog).ask(image_id, question)
    finally:
        catalog.close()
    if as_json:
        print_json(result.model_dump())
    else:
        stdout.print(result.answer, highlight=False)
