"""The browse pages: `/collections` lists the collections with their counts and encoder, and
`/collections/{name}` walks one without a query: its folder tree and its years and months
(links that set the folder and date filters), the files that failed with their reasons, and a
grid of the current listing with a "next page" link on the API's cursor (which `browse.js`
turns into infinite scroll).

Each page calls the same `CatalogBrowser` methods as `web.api.browse`, puts the answers in one
context dict and renders a template; it runs no queries of its own. Nothing here loads a model,
so the pages render while the encoder warms up."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from search.browse_schemas import BROWSE_SORTS, BrowseOptions
from search.query.browse import CatalogBrowser
from web.api.browse import CollectionName
from web.deps import Engine
from web.responses import linked_response

__all__ = ["FAILED_FILES_SHOWN", "router"]

router = APIRouter(include_in_schema=False)

FAILED_FILES_SHOWN = 200  # the rest: `pixseek failures --collection NAME`
_SORT_LABELS = {"date_desc": "newest first", "date_asc": "oldest first", "path": "by path"}


def _render(request: Request, template: str, context: dict[str, Any]) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(request, template, context)  # type: ignore[no-any-return]


def _listing_params(options: BrowseOptions, **changes: Any) -> dict[str, Any]:
    """The URL parameters of a listing: the options that differ from their defaults, with
    `changes` (None drops a parameter); never the collection (the path names it)."""
    values = options.model_dump(mode="json", exclude_defaults=True, exclude={"collection"})
    values.update(changes)
    return {name: value for name, value in values.items() if value not in (None, [], "")}


def _url(path: str, params: dict[str, Any]) -> str:
    query = urlencode(params, doseq=True)
    return f"{path}?{query}" if query else path


def _month_range(year: int, month: int) -> tuple[str, str]:
    last = calendar.monthrange(year, month)[1]
    return f"{year:04d}-{month:02d}-01", f"{year:04d}-{month:02d}-{last:02d}"


def _links(name: str, options: BrowseOptions) -> dict[str, Any]:
    """The URLs the collection page links to: a folder, a year, a month, an order, the next
    page (the page and the API forms of it)."""
    page_path = f"/collections/{quote(name, safe='')}"

    def browse_url(**changes: Any) -> str:
        return _url(page_path, _listing_params(options, cursor=None, **changes))

    def year_url(year: int) -> str:
        return browse_url(date_from=f"{year:04d}-01-01", date_to=f"{year:04d}-12-31")

    def month_url(year: int, month: int) -> str:
        first, last = _month_range(year, month)
        return browse_url(date_from=first, date_to=last)

    def next_urls(cursor: str | None) -> tuple[str | None, str | None]:
        if cursor is None:
            return None, None
        params = _listing_params(options, cursor=cursor)
        return _url(page_path, params), _url("/api/browse", {"collection": name, **params})

    return {
        "page_path": page_path,
        "browse_url": browse_url,
        "year_url": year_url,
        "month_url": month_url,
        "next_urls": next_urls,
        "clear_url": page_path,
    }


def _active_period(options: BrowseOptions) -> tuple[int, int | None] | None:
    """The year (and month) the date filters select exactly, to mark its link as current."""
    start, end = options.date_from, options.date_to
    if start is None or end is None or start.year != end.year or start.day != 1:
        return None
    if (start.month, end.month, end.day) == (1, 12, 31):
        return start.year, None
    if start.month == end.month and end.day == calendar.monthrange(end.year, end.month)[1]:
        return start.year, start.month
    return None


@router.get("/collections", response_class=HTMLResponse)
def collections_page(request: Request, engine: Engine) -> Response:
    summaries = CatalogBrowser(engine.catalog).collections()
    return _render(request, "collections.html", {"collections": summaries})


@router.get("/collections/{name}", response_class=HTMLResponse)
def collection_page(
    request: Request,
    engine: Engine,
    name: CollectionName,
    params: Annotated[BrowseOptions, Query()],
) -> Response:
    browser = CatalogBrowser(engine.catalog)
    summary = browser.collection(name)  # an unknown name: the 404 page, listing the known
    values = {field: getattr(params, field) for field in params.model_fields_set}
    options = BrowseOptions.model_validate({**values, "collection": name})
    links = _links(name, options)
    response = linked_response(browser.page(options))
    next_page, next_api = links["next_urls"](response.next_cursor)
    context: dict[str, Any] = {
        "collection": summary,
        "options": options,
        "filtered": options.has_filters,
        "response": response,
        "tree": browser.folders(name),
        "dates": browser.dates(name),
        "failed_files": browser.failed_files(name, limit=FAILED_FILES_SHOWN),
        "sorts": [
            (sort, _SORT_LABELS[sort], links["browse_url"](sort=sort)) for sort in BROWSE_SORTS
        ],
        "active_period": _active_period(options),
        "month_name": _month_name,
        "next_page": next_page,
        "next_api": next_api,
        **links,
    }
    return _render(request, "collection.html", context)


_month_name: Callable[[int], str] = calendar.month_abbr.__getitem__
