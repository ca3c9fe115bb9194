"""`pixseek search`: parse the flags into a `SearchRequest`, call `SearchEngine.search`, print."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from search.errors import InputError
from web.cli.common import open_catalog_for, print_json, reports_errors, settings_from, stdout

if TYPE_CHECKING:
    from search.schemas import SearchRequest, SearchResponse
    from search.settings import Settings

__all__ = ["search"]

DEFAULT_K = 10  # a terminal shows fewer results than a page

Query = Annotated[
    str | None,
    typer.Argument(help="What to look for, in plain words.", metavar="QUERY", show_default=False),
]
Image = Annotated[
    Path | None,
    typer.Option(help="Search by this example image instead of text.", show_default=False),
]
Mode = Annotated[
    str,
    typer.Option(
        help="vector (CLIP), text (captions, tags, file names) or "
        "hybrid (reciprocal-rank fusion of both)."
    ),
]
Rerank = Annotated[
    bool,
    typer.Option(
        help="Reorder the top candidates with the BLIP/BLIP-2 image-text matching model of "
        "--reranker."
    ),
]
RerankK = Annotated[
    int | None,
    typer.Option(
        help="How many candidates to rerank (default: 128 on CUDA, 16 on CPU; env "
        "PIXSEEK_RERANK_K).",
        show_default=False,
    ),
]
Reranker = Annotated[
    str | None,
    typer.Option(
        help="Reranker SPEC: a preset, a repo id or local-dir:PATH (default: the 'default' "
        "preset; env PIXSEEK_RERANKER).",
        show_default=False,
    ),
]


@reports_errors
def search(
    ctx: typer.Context,
    query: Query = None,
    image: Image = None,
    k: Annotated[int, typer.Option(help="How many results to show.")] = DEFAULT_K,
    collection: Annotated[
        str | None,
        typer.Option(help="Search only this collection (default: all).", show_default=False),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Query encoder SPEC; it must match the collection's own encoder, which is the "
            "default.",
            show_default=False,
        ),
    ] = None,
    dedupe: Annotated[
        bool, typer.Option(help="Collapse near-duplicate images into their best hit.")
    ] = False,
    mode: Mode = "vector",
    rerank: Rerank = False,
    rerank_k: RerankK = None,
    tag: Annotated[
        str | None,
        typer.Option(help="Only images tagged with this label (default: any).", show_default=False),
    ] = None,
    reranker: Reranker = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"results": [...]} as JSON.')
    ] = False,
) -> None:
    """Search by text (QUERY) or by an example image (--image)."""
    from search.schemas import parse_search_request
    from web.responses import linked_response

    if query is None and image is None:
        raise typer.BadParameter(
            "neither a QUERY nor --image PATH was given: give words to look for, or an example "
            "image"
        )
    if query is not None and image is not None:
        raise typer.BadParameter(
            f"both a QUERY ({query!r}) and --image {image} were given: give one of them"
        )
    request = parse_search_request(
        query=query,
        k=k,
        collection=collection,
        model=model,
        dedupe=dedupe,
        mode=mode,
        rerank=rerank,
        rerank_k=rerank_k,
        tag=tag,
    )
    data = _read_image(image) if image is not None else None
    response = _search(settings_from(ctx, reranker=reranker), request, data, source=str(image))
    if as_json:
        print_json(linked_response(response).model_dump())
    else:
        _print_results(response, show_clip=rerank)


def _read_image(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read --image {path}: {exc.strerror or exc}.") from exc


def _search(
    settings: Settings, request: SearchRequest, image: bytes | None, source: str
) -> SearchResponse:
    from search.query.engine import SearchEngine

    catalog = open_catalog_for(settings)
    try:
        return SearchEngine(settings, catalog).search(request, image, source=source)
    finally:
        catalog.close()


def _print_results(response: SearchResponse, show_clip: bool) -> None:
    table = Table(show_header=True, header_style="bold")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id", justify="right")
    table.add_column("path", overflow="fold")
    if show_clip:  # reranked: the score is the ITM probability, show the first stage's too
        table.add_column("clip", justify="right")
    for rank, result in enumerate(response.results, 1):
        extra = [f"{result.clip_score:.4f}"] if show_clip else []
        table.add_row(str(rank), f"{result.score:.4f}", str(result.id), result.path, *extra)
    stdout.print(table)
