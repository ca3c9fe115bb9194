"""Browse routes: a collection's images without a query (filters, an order, pages on a cursor),
its folder tree and its years and months. Each calls one `CatalogBrowser` method, which reads
the SQL catalog only: browsing never loads an encoder. The browse page (`web.browse_pages`)
calls the same methods, and its infinite scroll fetches `GET /api/browse`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from search.browse_schemas import BrowseOptions, DateCounts, FolderNode
from search.query.browse import CatalogBrowser
from search.schemas import SearchFilters
from web.deps import Engine
from web.responses import SearchResponse, linked_response

__all__ = ["CollectionName", "router"]

router = APIRouter(prefix="/api", tags=["browse"])

CollectionName = Annotated[
    str, Path(min_length=1, max_length=200, description="The collection's name.")
]

_BROWSE_DESCRIPTION = """The images matching the filters, without a query, newest first (or
oldest first, or by path), one page at a time: pass the response's `next_cursor` as `cursor`
with the same options for the next page (only `limit` may change; a cursor of another listing
is refused with 400). Pages are keyset-paged, so images indexed while a client scrolls shift
nothing: no image appears twice and none is skipped.

The answer has the shape of `GET /api/search`; browse results have no query, so their `score`
and `clip_score` are 0, `k` and `total` are the size of the whole listing, and `query` is
null. Read from the catalog only: no model is loaded."""


@router.get(
    "/browse",
    response_model=SearchResponse,
    summary="List images without a query (filters, date or path order, cursor paging)",
    description=_BROWSE_DESCRIPTION,
)
def browse(engine: Engine, params: Annotated[BrowseOptions, Query()]) -> SearchResponse:
    return linked_response(CatalogBrowser(engine.catalog).page(params))


@router.get(
    "/collections/{name}/folders",
    response_model=FolderNode,
    summary="A collection's folder tree with image counts",
    description="The folders of the collection's embedded images (those matching the filters, "
    "if any), from the deepest folder that holds them all. `count` includes every folder "
    "below, `direct` only the folder itself; pass `path` as the `folder` filter to list them.",
)
def folders(
    engine: Engine, name: CollectionName, filters: Annotated[SearchFilters, Query()]
) -> FolderNode:
    return CatalogBrowser(engine.catalog).folders(name, filters)


@router.get(
    "/collections/{name}/dates",
    response_model=DateCounts,
    summary="A collection's images per year and month",
    description="Embedded images (those matching the filters, if any) per year of their "
    "taken date, newest first, and per month of each year (UTC), plus how many have no "
    "taken date. A year or month is the date_from/date_to filter of its first and last day.",
)
def dates(
    engine: Engine, name: CollectionName, filters: Annotated[SearchFilters, Query()]
) -> DateCounts:
    return CatalogBrowser(engine.catalog).dates(name, filters)
