"""The shapes of browsing without a query, shared by `GET /api/browse`, the browse pages and
`search.query.browse`: which images (a filter set, an order, a page), and the counts that let a
person walk a collection (folders as a tree, years and months, the files that failed).

Browsing reads the SQL catalog only: no encoder and no FAISS index is loaded to answer any of
these, so `/collections` renders on a server whose model is still warming up (or missing).
A page of a listing is a `search.schemas.SearchResponse`, the same shape as a search, so a
client (and the page's infinite scroll) renders both with one piece of code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from search.schemas import MAX_LIMIT, SearchFilters

__all__ = [
    "BROWSE_SORTS",
    "DEFAULT_BROWSE_LIMIT",
    "MAX_BROWSE_CURSOR_CHARS",
    "BrowseOptions",
    "BrowseSort",
    "CollectionSummary",
    "DateCounts",
    "FailedFileEntry",
    "FolderNode",
    "MonthCount",
    "YearCount",
]

BrowseSort = Literal["date_desc", "date_asc", "path"]
BROWSE_SORTS: tuple[BrowseSort, ...] = ("date_desc", "date_asc", "path")
DEFAULT_BROWSE_LIMIT = 60  # one screenful of thumbnails and some
MAX_BROWSE_CURSOR_CHARS = 8192  # a cursor carries the last row's path (keyset paging)


class BrowseOptions(SearchFilters):
    """One listing of a collection without a query: the search filters, an order and a page.

    Paging is by keyset (the cursor holds the sort key of the last image shown), so images an
    indexer adds while someone scrolls never shift a page: no image is shown twice or skipped."""

    model_config = ConfigDict(frozen=True)

    collection: str | None = Field(
        default=None, max_length=200, description="Only this collection (default: all)."
    )
    sort: BrowseSort = Field(
        default="date_desc",
        description="date_desc (newest taken date first), date_asc (oldest first), or path "
        "(by file path, so a folder's images stay together). Undated images come last in both "
        "date orders; ties are broken by catalog id.",
    )
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = Field(
        default=DEFAULT_BROWSE_LIMIT,
        description="Images per page. next_cursor in the response fetches the next page.",
    )
    cursor: str | None = Field(
        default=None,
        max_length=MAX_BROWSE_CURSOR_CHARS,
        description="The next_cursor of the previous page of the same listing (same filters "
        "and sort; only limit may change).",
    )

    @field_validator("collection", "cursor", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        """An empty form field ("all collections", no cursor) means "not given"."""
        if isinstance(value, str):
            return value.strip() or None
        return value


class CollectionSummary(BaseModel):
    """A collection as the browse page lists it: its encoder and how many files are in which
    state (read from the catalog; no index is loaded)."""

    name: str
    model_id: str = Field(description="The encoder the collection's vectors were made with.")
    images: int = Field(description="Files in the catalog, whatever their state.")
    embedded: int = Field(description="Files with a vector: what searches and browsing show.")
    failed: int = Field(description="Files the indexer could not read (see failed files).")
    pending: int = Field(description="Files still waiting for a vector.")


class FolderNode(BaseModel):
    """One folder of a collection and the embedded images under it, at any depth."""

    path: str = Field(description="The folder as result paths show it; the folder filter.")
    name: str = Field(description="The folder's own name (its last path part).")
    count: int = Field(description="Images in this folder and every folder below it.")
    direct: int = Field(description="Images directly in this folder.")
    folders: list[FolderNode] = Field(default_factory=list, description="Sub-folders, by name.")


class MonthCount(BaseModel):
    """Images taken in one month of a year (UTC)."""

    month: int = Field(ge=1, le=12)
    count: int


class YearCount(BaseModel):
    """Images taken in one year (UTC), and per month of it."""

    year: int
    count: int
    months: list[MonthCount]


class DateCounts(BaseModel):
    """The embedded images of a collection by taken date: years (newest first) and their
    months (in calendar order); `undated` images have no taken time yet."""

    years: list[YearCount]
    undated: int = Field(description="Images without a taken date (metadata not read yet).")


class FailedFileEntry(BaseModel):
    """A file the indexer could not embed and why (the reason stored in the catalog)."""

    path: str
    reason: str


FolderNode.model_rebuild()
