"""`pixseek search`: parse the flags into a `SearchRequest`, answer it, print.

The answer comes from the engine in this process, or from a running `pixseek serve`, whose
model is loaded already (a search then takes milliseconds instead of seconds of model loading):
the one named by --server, or the one the data directory records (`web.server_info`) unless
--local. Both print the same table and the same JSON; a server that cannot be reached when it
was found by itself is skipped silently, and the search runs here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search.errors import InputError
from web.cli import search_options as o
from web.cli.common import open_catalog_for, reports_errors, settings_from
from web.cli.search_output import print_facets, print_search

if TYPE_CHECKING:
    from search.schemas import FacetsResponse, SearchRequest
    from search.settings import Settings
    from web.responses import SearchResponse

__all__ = ["search"]

Example = tuple[Path, bytes]  # an --image file and its bytes

Server = Annotated[
    str | None,
    typer.Option(
        help="Send the search to this running `pixseek serve`, e.g. http://127.0.0.1:8000 "
        "(default: the server running for the same data directory, if any).",
        metavar="<url>",
        show_default=False,
    ),
]
Local = Annotated[
    bool,
    typer.Option("--local", help="Search in this process even when a `pixseek serve` is running."),
]
Facets = Annotated[
    bool,
    typer.Option(
        "--facets",
        help="Instead of results, count the images matching the filters by collection, year, "
        "camera, tag and file type.",
    ),
]
AsJson = Annotated[
    bool,
    typer.Option("--json", help="Print the answer as JSON (the API's SearchResponse)."),
]


@reports_errors
def search(  # one parameter per flag: `request_from_context` reads them by name
    ctx: typer.Context,
    query: o.Query = None,
    image: o.Images = None,
    image_id: o.ImageId = None,
    k: o.K = None,
    limit: o.Limit = None,
    cursor: o.Cursor = None,
    sort: o.Sort = "relevance",
    min_score: o.MinScore = None,
    cutoff: o.Cutoff = None,
    collection: o.Collection = None,
    folder: o.Folder = None,
    date_from: o.DateFrom = None,
    date_to: o.DateTo = None,
    camera: o.Camera = None,
    tag: o.Tag = None,
    any_tag: o.AnyTag = None,
    min_width: o.MinWidth = None,
    max_width: o.MaxWidth = None,
    min_height: o.MinHeight = None,
    max_height: o.MaxHeight = None,
    min_megapixels: o.MinMegapixels = None,
    max_megapixels: o.MaxMegapixels = None,
    orientation: o.Orientation = None,
    file_type: o.FileType = None,
    has_caption: o.HasCaption = None,
    mode: o.Mode = "vector",
    model: o.Model = None,
    dedupe: o.Dedupe = False,
    rerank: o.Rerank = False,
    rerank_k: o.RerankK = None,
    reranker: o.Reranker = None,
    facets: Facets = False,
    server: Server = None,
    local: Local = False,
    as_json: AsJson = False,
) -> None:
    """Search by text (QUERY), by example images (--image) or both, with exact filters."""
    if not facets and query is None and not image and image_id is None:
        raise typer.BadParameter(
            "neither a QUERY nor --image PATH was given: give words to look for, or an example "
            "image"
        )
    if server is not None and (local or reranker is not None):
        flag = "--local" if local else "--reranker"
        raise typer.BadParameter(
            f"--server and {flag} were both given: a server searches with "
            "its own models; drop one of them"
        )
    request = o.request_from_context(ctx)
    settings = settings_from(ctx, reranker=reranker)
    url = server
    if url is None and not local and reranker is None:
        from web.server_info import find_live_server

        url = find_live_server(settings)
    if facets:
        print_facets(_facets(settings, request, url, explicit=server is not None), as_json=as_json)
        return
    examples = [(path, _read_image(path)) for path in image or []]
    response = _search(settings, request, examples, url, explicit=server is not None)
    print_search(response, as_json=as_json, show_clip=rerank)


def _read_image(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read --image {path}: {exc.strerror or exc}.") from exc


def _search(
    settings: Settings,
    request: SearchRequest,
    examples: list[Example],
    url: str | None,
    *,
    explicit: bool,
) -> SearchResponse:
    """The answer of the server at `url` (None: none), else of the engine here. A server found
    by itself that cannot answer leaves the search to this process."""
    from web.cli.server_client import ServerUnreachableError, search_on_server

    if url is not None:
        try:
            return search_on_server(url, request, [(p.name, data) for p, data in examples])
        except ServerUnreachableError:
            if explicit:
                raise
    return _search_locally(settings, request, examples)


def _search_locally(
    settings: Settings, request: SearchRequest, examples: list[Example]
) -> SearchResponse:
    """`SearchEngine.search` in this process; each example image is a +1 term of the query
    (`QueryImage`), as the server does with uploaded files."""
    from search.query.engine import SearchEngine
    from search.query.terms import QueryImage
    from web.responses import linked_response

    catalog = open_catalog_for(settings)
    try:
        engine = SearchEngine(settings, catalog)
        images = [QueryImage(data, str(path), 1.0) for path, data in examples]
        return linked_response(engine.search(request, images=images))
    finally:
        catalog.close()


def _facets(
    settings: Settings, request: SearchRequest, url: str | None, *, explicit: bool
) -> FacetsResponse:
    """The counts of the request's filter set, from the server at `url` or this process."""
    from web.cli.server_client import ServerUnreachableError, facets_on_server

    if url is not None:
        try:
            return facets_on_server(url, request)
        except ServerUnreachableError:
            if explicit:
                raise
    from search.query.engine import SearchEngine

    catalog = open_catalog_for(settings)
    try:
        return SearchEngine(settings, catalog).facets(request)
    finally:
        catalog.close()
